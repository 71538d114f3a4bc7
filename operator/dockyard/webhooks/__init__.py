"""Webhook delivery: registry events in, signed HTTP POSTs out, at least once.

The pipeline, one module per stage:

    registry ──POST envelope──▶ intake ──filter──▶ store (SQLite) ──▶ dispatch ──POST──▶ receiver
                                 events.py, scope.py     store.py       dispatch.py, retry.py, signing.py

`directory.py` holds what the handlers learned about each Webhook (filter, resolved target, quota);
`status.py` turns the store's view of one Webhook into its `status`; `service.py` wires it together
for the operator process.
"""
