"""SQLite WAL checkpoints moved out of a bulk writer's commits into a thread of their own."""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection, transaction

from webmail.mail import walcheckpoint

sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="WAL checkpoints are SQLite's")


def autocheckpoint() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        return cursor.fetchone()[0]


def write(kib: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS wal_probe (b BLOB)")
        for _ in range(kib // 32):
            cursor.execute("INSERT INTO wal_probe VALUES (%s)", [os.urandom(32 * 1024)])


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_checkpoints_leave_the_commits_for_a_thread_and_come_back_after(monkeypatch):
    path = connection.settings_dict["NAME"]
    monkeypatch.setattr(walcheckpoint, "WAL_STEP", 256 * 1024)
    try:
        with walcheckpoint.checkpoints_aside() as checkpoints:
            assert checkpoints is not None
            assert autocheckpoint() == 0  # this connection's commits no longer checkpoint
            before = os.path.getsize(path)
            write(1024)
            assert os.path.getsize(path) == before  # still all in the WAL
            checkpoints.committed(1024 * 1024)  # past WAL_STEP: the thread copies it over
            deadline = time.monotonic() + 10
            while os.path.getsize(path) <= before and time.monotonic() < deadline:
                time.sleep(0.05)
            assert os.path.getsize(path) > before + 512 * 1024
        assert autocheckpoint() == walcheckpoint.AUTOCHECKPOINT
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS wal_probe")


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_dead_checkpoint_thread_gives_the_checkpoints_back_to_the_commits(monkeypatch):
    monkeypatch.setattr(walcheckpoint._Checkpointer, "run", lambda self: None)  # dies at once
    with walcheckpoint.checkpoints_aside() as checkpoints:
        time.sleep(0.1)
        assert autocheckpoint() == 0
        checkpoints.committed(1)
        assert autocheckpoint() == walcheckpoint.AUTOCHECKPOINT


@pytest.mark.django_db
def test_it_does_nothing_inside_a_transaction_or_on_another_database():
    with walcheckpoint.checkpoints_aside() as checkpoints:
        assert checkpoints is None
