"""SQLite WAL checkpoints moved out of a bulk writer's commits into a thread of their own."""

from __future__ import annotations

import os
import sqlite3
import time

import pytest

from webmail.mail import walcheckpoint


def test_the_thread_copies_a_grown_wal_into_the_database(tmp_path, monkeypatch):
    monkeypatch.setattr(walcheckpoint, "WAL_STEP", 64 * 1024)
    path = str(tmp_path / "db.sqlite3")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # what checkpoints_aside sets for the sync
    writer.execute("CREATE TABLE t (b BLOB)")
    for _ in range(20):
        writer.execute("INSERT INTO t VALUES (?)", [os.urandom(32 * 1024)])
    before = os.path.getsize(path)
    worker = walcheckpoint._Checkpointer(path)
    worker.start()
    try:
        worker.wake.set()
        deadline = time.monotonic() + 10
        while os.path.getsize(path) <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.getsize(path) > 600 * 1024  # the pages left the WAL for the database file
        # The writer was never blocked: it goes on writing while the thread lives.
        writer.execute("INSERT INTO t VALUES (?)", [b"more"])
        assert writer.execute("SELECT count(*) FROM t").fetchone() == (21,)
    finally:
        worker.done.set()
        worker.wake.set()
        worker.join(10)
        writer.close()
    assert not worker.is_alive()


@pytest.mark.django_db
def test_it_does_nothing_for_an_in_memory_or_non_sqlite_database():
    with walcheckpoint.checkpoints_aside() as committed:
        assert committed is None
