"""The full-text index is filled from a queue after the sync: queued, indexed, re-indexed, dropped."""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction

from tests.mail.factories_reading import build_raw, empty_fulltext_queue, make_mailbox
from webmail.mail import fulltext
from webmail.mail.actions.store import Incoming, store_messages
from webmail.mail.models import Message, MessageBody
from webmail.mail.search import search_page


@pytest.fixture(autouse=True)
def fresh_queue(db):
    empty_fulltext_queue()


def store_unindexed(folder, uid: int, **fields) -> Message:
    """Store a message as a sync batch does, without running the indexer afterwards."""
    with transaction.atomic():
        (row,) = store_messages(folder, [Incoming(uid, build_raw(**fields))])
    return row


def found(user, words: str) -> list[str]:
    return [m.subject for m in search_page(user, words)[1].messages]


def queued() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT message_id FROM mail_fts_pending")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_a_stored_message_is_queued_then_found_once_indexed(alice):
    inbox = make_mailbox(alice)["inbox"]
    row = store_unindexed(inbox, 1, subject="Quarterly figures", text="The heron report is attached.\n")
    assert queued() == {row.pk}
    assert fulltext.pending_count([inbox.account_id]) == 1
    assert found(alice, "heron") == []  # listed and readable already, not yet searchable

    assert fulltext.index_pending() == 1
    assert queued() == set()
    assert fulltext.pending_count([inbox.account_id]) == 0
    assert found(alice, "heron") == ["Quarterly figures"]
    assert fulltext.index_pending() == 0  # nothing left: indexing again does nothing


@pytest.mark.django_db
def test_indexing_goes_in_chunks_and_twice_is_harmless(alice, monkeypatch):
    inbox = make_mailbox(alice)["inbox"]
    monkeypatch.setattr(fulltext, "CHUNK", 2)
    for uid in range(1, 6):
        store_unindexed(inbox, uid, subject=f"Note {uid}", text="kingfisher\n")
    assert fulltext.index_pending(max_messages=3) == 3
    assert len(queued()) == 2
    assert fulltext.index_pending() == 2
    # A message queued again (its text rewritten with the same words) keeps one index entry.
    MessageBody.objects.filter(message__folder=inbox, message__uid=1).update(text="kingfisher again")
    assert fulltext.index_pending() == 1
    assert sorted(found(alice, "kingfisher")) == [f"Note {uid}" for uid in range(1, 6)]


@pytest.mark.django_db
def test_changed_text_is_indexed_again(alice):
    inbox = make_mailbox(alice)["inbox"]
    row = store_unindexed(inbox, 1, subject="Draft", text="first version mentions otters\n")
    fulltext.index_pending()
    MessageBody.objects.filter(message=row).update(text="second version mentions beavers")
    assert queued() == {row.pk}
    fulltext.index_pending()
    assert found(alice, "beavers") == ["Draft"]
    assert found(alice, "otters") == []


@pytest.mark.django_db
def test_a_message_deleted_before_it_was_indexed_leaves_the_queue(alice):
    inbox = make_mailbox(alice)["inbox"]
    row = store_unindexed(inbox, 1, subject="Gone soon", text="ephemeral\n")
    Message.objects.filter(pk=row.pk).delete()
    assert queued() == set()
    assert fulltext.index_pending() == 0


@pytest.mark.django_db
def test_one_persons_queue_is_not_counted_for_another(alice, bob):
    mine, theirs = make_mailbox(alice)["inbox"], make_mailbox(bob)["inbox"]
    store_unindexed(theirs, 1, subject="Bob's", text="private words\n")
    assert fulltext.pending_count([mine.account_id]) == 0
    assert fulltext.pending_count([theirs.account_id]) == 1


@pytest.mark.django_db
def test_the_search_page_says_how_many_messages_are_not_indexed_yet(client, alice):
    inbox = make_mailbox(alice)["inbox"]
    for uid in (1, 2):
        store_unindexed(inbox, uid, subject=f"Fresh {uid}", text="lapwing\n")
    client.force_login(alice)
    page = client.get("/mail/search/", {"q": "lapwing"}).content.decode()
    assert "2 new messages are still being indexed" in page
    fulltext.index_pending()
    page = client.get("/mail/search/", {"q": "lapwing"}).content.decode()
    assert "still being indexed" not in page
    assert "Fresh 1" in page and "Fresh 2" in page


def test_a_commit_that_stored_mail_starts_the_indexing_task(celery_worker_thread, alice):
    """Real Redis, a real worker: storing commits, the task it started indexes the message."""
    from django.core.cache import cache

    cache.delete(fulltext.QUEUED_FLAG)
    inbox = make_mailbox(alice)["inbox"]
    store_unindexed(inbox, 1, subject="Started by the commit", text="corncrake\n")
    deadline = time.monotonic() + 20
    while queued() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert queued() == set()
    assert found(alice, "corncrake") == ["Started by the commit"]
    assert cache.get(fulltext.QUEUED_FLAG) is None  # the task cleared its flag when done


@pytest.mark.django_db(transaction=True)
def test_a_store_while_a_task_is_queued_starts_no_second_one(alice, redis_server, monkeypatch):
    from django.core.cache import cache

    from webmail.mail import tasks

    started = []
    monkeypatch.setattr(tasks.index_fulltext, "delay", lambda: started.append(1))
    cache.delete(fulltext.QUEUED_FLAG)
    inbox = make_mailbox(alice)["inbox"]
    store_unindexed(inbox, 1, subject="One", text="x\n")
    store_unindexed(inbox, 2, subject="Two", text="x\n")
    assert started == [1]
    # The task's last look after clearing its flag takes what was stored while it ran.
    assert fulltext.run_indexing() == 2
    store_unindexed(inbox, 3, subject="Three", text="x\n")
    assert started == [1, 1]
    cache.delete(fulltext.QUEUED_FLAG)


@pytest.mark.django_db
def test_the_metrics_show_the_indexing_queue(client, alice):
    inbox = make_mailbox(alice)["inbox"]
    for uid in (1, 2, 3):
        store_unindexed(inbox, uid, subject=f"Queued {uid}")
    body = client.get("/metrics").content.decode()
    assert "webmail_fulltext_pending 3.0" in body
    fulltext.index_pending()
    assert "webmail_fulltext_pending 0.0" in client.get("/metrics").content.decode()


@pytest.mark.django_db(transaction=True)
def test_one_indexer_at_a_time(alice, redis_server):
    from django.core.cache import cache

    inbox = make_mailbox(alice)["inbox"]
    store_unindexed(inbox, 1, subject="Waiting", text="x\n")
    cache.set(fulltext.RUNNING_LOCK, "another", timeout=60)  # an indexer is at work elsewhere
    try:
        assert fulltext.run_indexing() is None and len(queued()) == 1  # left to that one
    finally:
        cache.delete(fulltext.RUNNING_LOCK)
    assert fulltext.run_indexing() == 1 and queued() == set()
    assert cache.get(fulltext.RUNNING_LOCK) is None  # released when done
