"""SQLite: move WAL checkpoints out of a bulk writer's commits, into a thread of their own.

With journal_mode=WAL, the connection whose commit crosses wal_autocheckpoint copies the WAL into
the database file and syncs it, inside that commit: during an initial sync, 0.3-0.6 s of a
10,000-message folder spent waiting in commits. ``checkpoints_aside()`` turns automatic
checkpoints off for the sync's connection and runs PASSIVE checkpoints (which never block the
writer or readers) from another connection in a thread, after commits, while the WAL file is at
least WAL_STEP bytes, at most every MIN_GAP seconds.
On PostgreSQL, or any other database, it does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator

from django.db import connection

log = logging.getLogger(__name__)

WAL_STEP = 64 * 1024 * 1024  # checkpoint when the WAL has grown by this much
MIN_GAP = 0.5  # seconds between two checkpoints (a PASSIVE one with little to copy still costs)
AUTOCHECKPOINT = 20000  # pages; what settings.py sets for every connection (restored on exit)


class _Checkpointer(threading.Thread):
    def __init__(self, path: str) -> None:
        super().__init__(name="wal-checkpoint", daemon=True)
        self.path, self.wal = path, path + "-wal"
        self.wake, self.done = threading.Event(), threading.Event()

    def run(self) -> None:
        try:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            log.warning("cannot open %s for checkpoints", self.path, exc_info=True)
            return
        try:
            while not self.done.is_set():
                self.wake.wait(1.0)
                self.wake.clear()
                if self.done.is_set():
                    break
                if self._wal_size() >= WAL_STEP:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.done.wait(MIN_GAP)
        except sqlite3.Error:
            log.warning("background checkpoint failed", exc_info=True)
        finally:
            db.close()

    def _wal_size(self) -> int:
        try:
            return os.path.getsize(self.wal)
        except OSError:
            return 0


@contextlib.contextmanager
def checkpoints_aside() -> Iterator[threading.Event | None]:
    """Run the body with this connection's WAL checkpoints done by a thread; yields an event to set
    after each commit (None when there is nothing to do: not SQLite, or an in-memory database)."""
    path = connection.settings_dict.get("NAME") if connection.vendor == "sqlite" else None
    if (
        not path
        or str(path).startswith(":memory:")
        or "mode=memory" in str(path)
        or connection.in_atomic_block
    ):
        yield None
        return
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    worker = _Checkpointer(str(path))
    worker.start()
    try:
        yield worker.wake
    finally:
        # Not joined: a checkpoint under way finishes in its thread (the sync need not wait for it).
        worker.done.set()
        worker.wake.set()
        if connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT}")
