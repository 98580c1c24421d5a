"""Failures are recorded on the account with a human reason; retries back off; auth failures stop."""

from __future__ import annotations

import socket

import pytest
from django.utils import timezone

from accounts.models import AccountState
from webmail.mail.actions.sync import do_sync_account
from webmail.mail.models import SyncState

pytestmark = [pytest.mark.django_db]


@pytest.mark.mailstack
def test_a_wrong_password_stops_retrying_and_says_so(account):
    account.set_incoming_password("not the password")
    account.save()

    report = do_sync_account(account.pk)

    account.refresh_from_db()
    state = SyncState.objects.get(account=account)
    assert report.error
    assert account.state == AccountState.AUTH_FAILED
    assert "refused the user name or password" in account.state_reason
    assert state.next_attempt_at is None and state.failures == 1
    from webmail.mail.actions.schedule import due_account_ids

    assert account.pk not in due_account_ids()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.mailstack
def test_a_refused_connection_is_retried_with_growing_backoff(account):
    account.incoming_port = _closed_port()
    account.save()

    delays = []
    for _ in range(3):
        before = timezone.now()
        report = do_sync_account(account.pk)
        state = SyncState.objects.get(account=account)
        delays.append((state.next_attempt_at - before).total_seconds())
        assert report.error

    account.refresh_from_db()
    assert account.state == AccountState.CONNECTION_FAILING
    assert "refused" in account.state_reason.lower() or "connect" in account.state_reason.lower()
    assert state.failures == 3
    assert delays[0] < delays[1] < delays[2]
    assert state.last_error == account.state_reason


def test_missing_disabled_and_pop3_accounts_are_skipped(alice):
    from tests.accounts.factories import make_account

    assert do_sync_account(999_999).skipped
    disabled = make_account(alice, state=AccountState.DISABLED)
    assert do_sync_account(disabled.pk).skipped
    pop = make_account(alice, email="p@example.test", incoming_protocol="pop3", incoming_port=995)
    assert do_sync_account(pop.pk).skipped


def test_a_full_storage_quota_stops_new_downloads_until_there_is_room(account, server):
    from accounts.models import Limits
    from tests.mail.conftest import append_many, message
    from webmail.mail.actions.sync import QUOTA_NOTE, do_sync_account
    from webmail.mail.models import Message

    append_many(server, "INBOX", [message(n, size=300_000) for n in range(1, 5)])
    Limits.objects.create(user=account.user, max_cache_mb=1)  # room for three of the four
    assert not do_sync_account(account.pk).error
    assert Message.objects.filter(account=account).count() == 3
    account.refresh_from_db()
    assert account.state == "ok" and account.state_reason == QUOTA_NOTE
    Limits.objects.filter(user=account.user).update(max_cache_mb=10)
    do_sync_account(account.pk)
    assert Message.objects.filter(account=account).count() == 4
    account.refresh_from_db()
    assert account.state_reason == ""
