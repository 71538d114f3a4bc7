"""The Registry feature: a CNCF distribution registry with Dockyard's token service.

`reconcile.py` orchestrates one reconcile; `tier_guard.py`, `tls.py` and `admin.py` hold one
decision each; `status.py` turns what the children show into the Registry's status; `manifests/`
builds the children (pure, golden-tested).
"""
