"""Run an IDLE watcher process (several can run, on several machines)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from webmail.mail.watcher import Watcher, watcher_capacity

# IDLE threads block in the kernel: a small stack keeps a thousand of them cheap.
threading.stack_size(256 * 1024)


class Command(BaseCommand):
    help = "Watch IMAP accounts with IDLE and request a sync as soon as new mail arrives."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--capacity", type=int, default=None, help="most accounts this process watches")
        parser.add_argument("--name", default=None, help="watcher id (default host:pid)")

    def handle(self, *args: Any, **options: Any) -> None:
        watcher = Watcher(capacity=options["capacity"] or watcher_capacity(), name=options["name"])
        signal.signal(signal.SIGTERM, lambda *_: watcher.stop())
        signal.signal(signal.SIGINT, lambda *_: watcher.stop())
        watcher.run_forever()
