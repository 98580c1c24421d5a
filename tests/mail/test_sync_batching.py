"""Memory stays flat: new messages are fetched and stored in batches bounded by count and bytes."""

from __future__ import annotations

import pytest

from tests.mail.conftest import append_many, assert_cache_matches, message
from webmail.mail.actions import sync
from webmail.mail.actions.sync import do_sync_account
from webmail.mail.models import SyncState

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]


def _fetch_batches(sent: list[bytes]) -> list[bytes]:
    return [line for line in sent if line.startswith(b"UID FETCH") and b"BODY.PEEK[]" in line]


def test_a_large_folder_is_fetched_in_several_batches(account, server, command_counter):
    server.create_folder("Big")
    append_many(server, "Big", [message(i) for i in range(2000)])
    progress = []

    report = do_sync_account(account.pk, folder_names=["Big"], progress=lambda *a: progress.append(a))

    assert report.new == 2000
    batches = _fetch_batches(command_counter())
    assert len(batches) >= 2000 // sync.BATCH_MESSAGES
    assert progress[-1] == ("Big", 2000, 2000)
    assert [p[1] for p in progress] == sorted(p[1] for p in progress)
    assert_cache_matches(account, server, ["Big"])
    assert SyncState.objects.get(account=account).progress_total == 0  # reset after success


def test_batches_are_also_bounded_by_bytes(monkeypatch, account, server, command_counter):
    monkeypatch.setattr(sync, "BATCH_BYTES", 100_000)
    append_many(server, "INBOX", [message(i, size=30_000) for i in range(12)])

    do_sync_account(account.pk, folder_names=["INBOX"])

    assert len(_fetch_batches(command_counter())) >= 4  # about 3 messages of 30 KB per 100 KB
    assert_cache_matches(account, server, ["INBOX"])
