"""Memory stays flat: new messages are fetched and stored in batches bounded by count and bytes."""

from __future__ import annotations

import pytest

from tests.mail.conftest import append_many, assert_cache_matches, message
from webmail.mail.actions import store, sync
from webmail.mail.actions.sync import do_sync_account
from webmail.mail.models import Folder, Message, SyncState

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


def _stored(account) -> list[tuple]:
    fields = ["uid", "subject", "from_email", "message_id", "snippet", "thread__subject", "body__text"]
    return list(Message.objects.filter(account=account).order_by("uid").values_list(*fields))


def test_a_parse_pool_stores_exactly_what_the_sync_thread_stores(
    settings, account, server, alice, monkeypatch
):
    from tests.accounts.factories import make_account

    monkeypatch.setattr(sync, "BATCH_MESSAGES", 40)  # several batches: parsing runs one batch ahead
    append_many(
        server, "INBOX", [message(i, subject=f"Re: Message {i - 1}" if i % 3 else None) for i in range(130)]
    )
    other = make_account(
        alice,
        password=account.get_incoming_password(),
        email="second@example.test",
        incoming_host=account.incoming_host,
        incoming_port=account.incoming_port,
        incoming_username=account.incoming_username,
    )
    settings.WEBMAIL_SYNC_PARSE_PROCESSES = 0  # the parse thread
    do_sync_account(account.pk, folder_names=["INBOX"])
    settings.WEBMAIL_SYNC_PARSE_PROCESSES = 2
    store.start_parse_pool(wait=True)  # else the first batches are parsed in the thread while it starts

    report = do_sync_account(other.pk, folder_names=["INBOX"])

    assert report.new == 130 and store._POOL.get("pool") is not None
    assert _stored(other) == _stored(account)
    assert_cache_matches(other, server, ["INBOX"])


def test_a_failing_parse_pool_falls_back_to_parsing_in_the_sync_thread(
    settings, account, server, monkeypatch
):
    class Broken:
        def map_async(self, *args, **kwargs):
            raise OSError("worker died")

    settings.WEBMAIL_SYNC_PARSE_PROCESSES = 2
    monkeypatch.setattr(store, "_usable_pool", lambda size: Broken())
    append_many(server, "INBOX", [message(i) for i in range(40)])

    report = do_sync_account(account.pk, folder_names=["INBOX"])

    assert report.new == 40 and not report.error
    assert Message.objects.filter(account=account).exclude(snippet="").count() == 40
    assert_cache_matches(account, server, ["INBOX"])


def test_billiard_starts_the_pool_inside_a_daemonic_process_like_a_celery_worker(settings):
    # A Celery prefork worker is a daemonic process: multiprocessing refuses it children, billiard not.
    import billiard

    settings.WEBMAIL_SYNC_PARSE_PROCESSES = 1

    def run(out):
        store.start_parse_pool(wait=True)
        items = [store.Incoming(uid=i + 1, raw=message(i)) for i in range(store.POOL_MIN)]
        job = store.ParseJob(Folder(pk=1, account_id=1), items)
        out.put((job._pending is not None, [row.subject for row, _text in job.rows()][:2]))

    out = billiard.Queue()
    child = billiard.Process(target=run, args=(out,), daemon=True)
    child.start()
    used_pool, subjects = out.get(timeout=60)
    child.join(10)
    assert used_pool and subjects == ["Message 0", "Message 1"]


def test_batches_are_parsed_in_the_thread_while_the_pool_starts(settings):
    """Starting a parse process takes about half a second: the sync does not wait for it."""
    settings.WEBMAIL_SYNC_PARSE_PROCESSES = 1
    store._close_pool()
    items = [store.Incoming(uid=i + 1, raw=message(i)) for i in range(store.POOL_MIN)]

    first = store.ParseJob(Folder(pk=1, account_id=1), items)

    assert first._pending is None  # not waiting for the pool: the parse thread has it
    assert [row.subject for row, _text in first.rows()][:2] == ["Message 0", "Message 1"]
    store.start_parse_pool(wait=True)
    later = store.ParseJob(Folder(pk=1, account_id=1), items)
    assert later._pending is not None
    assert [row.subject for row, _text in later.rows()] == [row.subject for row, _text in first.rows()]
