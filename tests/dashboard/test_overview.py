"""The overview's figures, computed from a known fixture."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccountState
from tests.accounts.factories import make_account
from tests.mail.factories_reading import empty_fulltext_queue
from webmail.dashboard import figures
from webmail.mail.blobs import pack
from webmail.mail.models import Folder, Message, MessageBody, SyncState

pytestmark = pytest.mark.django_db


@pytest.fixture
def fixture(alice, bob, operator, django_user_model):
    now = timezone.now()
    django_user_model.objects.filter(pk=alice.pk).update(last_login=now - timedelta(hours=1))
    django_user_model.objects.filter(pk=bob.pk).update(last_login=now - timedelta(days=3))
    fine = make_account(alice, name="fine", state=AccountState.OK)
    SyncState.objects.create(account=fine, finished_at=now - timedelta(minutes=1))
    lagging = make_account(alice, name="lagging", state=AccountState.OK)
    SyncState.objects.create(account=lagging, finished_at=now - timedelta(hours=2))
    make_account(bob, name="auth", state=AccountState.AUTH_FAILED)
    make_account(bob, name="conn", state=AccountState.CONNECTION_FAILING)
    make_account(bob, name="off", state=AccountState.DISABLED)
    folder = Folder.objects.create(account=fine, name="INBOX")
    empty_fulltext_queue()
    for uid in (1, 2):
        m = Message.objects.create(
            account=fine, folder=folder, uid=uid, internal_date=now, date=now, size=1000
        )
        MessageBody.objects.create(message=m, raw_compressed=pack(b"x" * 1000))
    return {"fine": fine, "now": now}


def test_figures_match_the_fixture(fixture):
    now = fixture["now"]
    assert figures.people_figures(now) == {"total": 3, "active_24h": 1, "staff": 1}
    states = figures.account_states(now)
    assert states == {
        "total": 5,
        "fine": 1,
        "lagging": 1,
        "auth_failed": 1,
        "connection_failing": 1,
        "new": 0,
        "disabled": 1,
    }
    cache = figures.cache_figures()
    assert cache["messages"] == 2 and cache["message_bytes"] == 2000
    assert 0 < cache["stored_bytes"] < 2000  # compressed
    assert cache["unindexed"] == 2  # stored bodies wait for the full-text index task


def test_the_overview_says_how_many_messages_wait_for_the_search_index(fixture, client, operator):
    from webmail.mail import fulltext

    client.force_login(operator)
    page = client.get("/dashboard/").content.decode()
    assert "2 messages waiting for the search index" in page
    fulltext.index_pending()
    assert "waiting for the search index" not in client.get("/dashboard/").content.decode()


def test_send_series_counts_sent_and_failed(fixture, alice):
    from webmail.compose.models import OutgoingMessage

    now = fixture["now"]
    account = fixture["fine"]

    def out(state, when, n):
        for i in range(n):
            msg = OutgoingMessage.objects.create(
                user=alice, account=account, state=state, message_id=f"<{state}{when}{i}@x>", sent_at=when
            )
            OutgoingMessage.objects.filter(pk=msg.pk).update(updated_at=when)

    # Within the current hour's bar even when the test runs in an hour's first minutes.
    out("sent", max(now - timedelta(minutes=5), now.replace(minute=0, second=0, microsecond=0)), 3)
    out("sent", now - timedelta(hours=3), 2)
    out("failed", now - timedelta(hours=3), 1)
    out("sent", now - timedelta(days=10), 4)
    out("draft", now, 5)
    day = figures.send_series(now, days=1)
    assert (day.total, day.failed, len(day.bars)) == (5, 1, 24)
    assert day.bars[-1].value == 3 and day.bars[-1].height == 100.0
    month = figures.send_series(now, days=30)
    assert (month.total, month.failed, len(month.bars)) == (9, 1, 30)
    assert figures.outbox_states() == {"sent": 9, "failed": 1}


def test_overview_page_shows_the_figures(client, operator, fixture, monkeypatch):
    client.force_login(operator)
    body = client.get(reverse("dashboard:overview")).content.decode()
    assert 'data-testid="people-total">3<' in body
    assert 'data-testid="state-lagging">1<' in body
    assert "<svg" in body and "<script>" not in body and "style=" not in body


def test_system_fragment_reports_queues_workers_and_watchers(client, operator, monkeypatch):
    from webmail.mail.locks import redis_client
    from webmail.mail.watcher import WATCHERS_KEY, lease_key

    r = redis_client()
    r.delete("send", WATCHERS_KEY)
    r.rpush("send", "a", "b")
    r.set(lease_key(990001), "host:1", ex=30)
    r.hset(WATCHERS_KEY, "host:1", int(timezone.now().timestamp()))
    monkeypatch.setattr(figures, "worker_heartbeats", lambda: ["celery@host"])
    try:
        client.force_login(operator)
        body = client.get(reverse("dashboard:system")).content.decode()
        assert 'data-testid="queue-send">2<' in body
        assert "celery@host" in body
        assert 'data-testid="leases">1<' in body
    finally:
        r.delete("send", WATCHERS_KEY, lease_key(990001))


def test_no_workers_is_shown_plainly(client, operator, monkeypatch):
    class NoReply:
        def ping(self):
            return None

    from webmail.celery import app

    monkeypatch.setattr(app.control, "inspect", lambda timeout=1: NoReply())
    client.force_login(operator)
    assert b"No worker answered." in client.get(reverse("dashboard:system")).content
