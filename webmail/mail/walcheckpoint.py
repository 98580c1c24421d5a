"""SQLite: move WAL checkpoints out of a bulk writer's commits, into a thread of their own.

With journal_mode=WAL, the connection whose commit crosses wal_autocheckpoint copies the WAL into
the database file and syncs it, inside that commit: during an initial sync, 0.3-0.6 s of a
10,000-message folder spent waiting in commits. ``checkpoints_aside()`` turns automatic
checkpoints off for the sync's connection and gives the sync a ``Checkpoints`` to tell after each
commit how much it wrote; every WAL_STEP bytes a thread runs a PASSIVE checkpoint (which never
blocks the writer or readers) from a connection of its own. Should that thread die, automatic
checkpoints come back on at the next commit. On PostgreSQL, or any other database, it does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator

from django.db import connection

log = logging.getLogger(__name__)

WAL_STEP = 64 * 1024 * 1024  # bytes written between two checkpoints
AUTOCHECKPOINT = 20000  # pages; what settings.py sets for every connection (restored on exit)


class _Checkpointer(threading.Thread):
    def __init__(self, path: str) -> None:
        super().__init__(name="wal-checkpoint", daemon=True)
        self.path = path
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
                if self.wake.is_set():
                    self.wake.clear()
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            log.warning("background checkpoint failed", exc_info=True)
        finally:
            db.close()


class Checkpoints:
    """What a bulk writer tells after each commit (see checkpoints_aside)."""

    def __init__(self, worker: _Checkpointer) -> None:
        self._worker, self._written, self._fallback = worker, 0, False

    def committed(self, nbytes: int) -> None:
        """NBYTES more are in the WAL: checkpoint every WAL_STEP of them (automatically if the thread died)."""
        if not self._worker.is_alive():
            if not self._fallback:
                self._fallback = True
                _set_autocheckpoint(AUTOCHECKPOINT)
            return
        self._written += nbytes
        if self._written >= WAL_STEP:
            self._written = 0
            self._worker.wake.set()


def _set_autocheckpoint(pages: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")


@contextlib.contextmanager
def checkpoints_aside() -> Iterator[Checkpoints | None]:
    """Run the body with this connection's WAL checkpoints done by a thread; yields what to tell after
    each commit (None when there is nothing to do: not SQLite, an in-memory database, or inside a
    transaction, where the caller's commits are not this code's to time)."""
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
    _set_autocheckpoint(0)
    worker = _Checkpointer(str(path))
    worker.start()
    try:
        yield Checkpoints(worker)
    finally:
        # Not joined: a checkpoint under way finishes in its thread (the sync need not wait for it).
        worker.done.set()
        if connection.connection is not None:
            _set_autocheckpoint(AUTOCHECKPOINT)
