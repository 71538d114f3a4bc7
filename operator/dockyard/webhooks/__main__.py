"""`python -m dockyard.webhooks`: list a webhook's deliveries and replay them, from the operator's
delivery store (run it in the operator's pod: `kubectl exec deploy/dockyard -- python -m
dockyard.webhooks deliveries team-a/ci`). Reading is safe while the operator runs (SQLite WAL); a
replayed delivery is picked up by the running operator within seconds. Secrets are not in the store:
it holds event bodies, never URLs or header values.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from dockyard.webhooks.service import STORE_FILE
from dockyard.webhooks.status import delivery_record
from dockyard.webhooks.store import DeliveryStore

STATES = ("pending", "delivered", "failed", "canceled")


def _store(args: argparse.Namespace) -> DeliveryStore:
    path = Path(args.state_dir) / STORE_FILE
    if not path.exists():
        raise SystemExit(f"no delivery store at {path} (set --state-dir or DOCKYARD_STATE_DIR)")
    return DeliveryStore(path)


def list_deliveries(args: argparse.Namespace) -> int:
    namespace, _, name = args.webhook.partition("/")
    if not name:
        raise SystemExit("name the webhook as NAMESPACE/NAME")
    args.json = args.json or args.body
    store = _store(args)
    try:
        deliveries = store.of_webhook(namespace, name, args.state, args.limit)
    finally:
        store.close()
    for delivery in deliveries:
        record = delivery_record(delivery)
        if args.body:
            record["body"] = json.loads(delivery.body)
        print(
            json.dumps(record)
            if args.json
            else f"{record['time']}  {delivery.id}  {delivery.action:<6}  {delivery.state:<9}  "
            f"attempts={delivery.attempts}  http={delivery.http_status or '-'}  {delivery.target or ''}  {delivery.error or ''}".rstrip()
        )
    return 0


def redeliver(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        count = store.requeue(args.ids)
    finally:
        store.close()
    print(f"{count} of {len(args.ids)} deliveries queued again")
    return 0 if count == len(args.ids) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dockyard.webhooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", default=os.environ.get("DOCKYARD_STATE_DIR", "/var/lib/dockyard"))
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("deliveries", help="list a webhook's deliveries, newest first")
    listing.add_argument("webhook", help="NAMESPACE/NAME")
    listing.add_argument("--state", choices=STATES)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument("--body", action="store_true", help="include the event body sent (JSON output)")
    listing.set_defaults(run=list_deliveries)
    replay = commands.add_parser("redeliver", help="send delivered or failed deliveries again (same id and body)")
    replay.add_argument("ids", nargs="+", metavar="DELIVERY_ID")
    replay.set_defaults(run=redeliver)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
