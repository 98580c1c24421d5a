"""List, send again or drop dead-lettered tasks (webmail.ops.dlq)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from webmail.ops import dlq


class Command(BaseCommand):
    help = (
        "List dead-lettered tasks; --requeue ID (or --all) sends them again, --drop ID/--purge removes them."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="print the entries as JSON lines")
        parser.add_argument(
            "--requeue", action="append", default=[], metavar="ID", help="send this task again"
        )
        parser.add_argument("--drop", action="append", default=[], metavar="ID", help="remove this entry")
        parser.add_argument("--all", action="store_true", help="with no ID: requeue every entry")
        parser.add_argument("--purge", action="store_true", help="remove every entry")
        parser.add_argument("--limit", type=int, default=dlq.MAX_ENTRIES)

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["purge"]:
            self.stdout.write(f"dropped {dlq.purge()} dead letters")
            return
        entries = dlq.entries(opts["limit"])
        wanted_requeue = set(opts["requeue"])
        wanted_drop = set(opts["drop"])
        unknown = (wanted_requeue | wanted_drop) - {e.get("id") for e in entries}
        if unknown:
            raise CommandError(f"no dead letter with id {', '.join(sorted(unknown))}")
        if opts["all"] or wanted_requeue or wanted_drop:
            for entry in entries:
                if entry.get("id") in wanted_drop:
                    dlq.remove(entry)
                    self.stdout.write(f"dropped {entry['id']} ({entry.get('task')})")
                elif opts["all"] or entry.get("id") in wanted_requeue:
                    new_id = dlq.requeue(entry)
                    self.stdout.write(f"requeued {entry['id']} ({entry.get('task')}) as {new_id}")
            return
        if opts["json"]:
            for entry in entries:
                entry.pop("_raw", None)
                self.stdout.write(json.dumps(entry, sort_keys=True))
            return
        if not entries:
            self.stdout.write("no dead letters")
            return
        for entry in entries:
            when = datetime.fromtimestamp(entry.get("failed_at", 0), UTC).isoformat(timespec="seconds")
            call = json.dumps(entry.get("args") or []) + (
                " " + json.dumps(entry["kwargs"]) if entry.get("kwargs") else ""
            )
            self.stdout.write(
                f"{when}  {entry.get('id')}  {entry.get('task')}{call}  {entry.get('reason')}: "
                f"{entry.get('exception')}: {entry.get('error')}"
            )
        self.stdout.write(
            f"{len(entries)} dead letters; --requeue ID or --all to send again, --drop ID to remove"
        )
