"""Which accounts beat syncs, folder-limited syncs, and housekeeping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.accounts.factories import make_account
from webmail.mail.actions.schedule import do_delete_empty_threads, due_account_ids
from webmail.mail.models import Folder, Message, SyncState, Thread

pytestmark = pytest.mark.django_db


def test_new_stale_and_retry_due_accounts_are_due_but_not_fresh_failing_or_locked(alice):
    now = timezone.now()
    new = make_account(alice, name="new")
    fresh = make_account(alice, name="fresh")
    SyncState.objects.create(account=fresh, started_at=now - timedelta(minutes=1), finished_at=now)
    stale = make_account(alice, name="stale")
    SyncState.objects.create(
        account=stale, started_at=now - timedelta(hours=2), finished_at=now - timedelta(hours=1)
    )
    retry = make_account(alice, name="retry")
    SyncState.objects.create(account=retry, failures=2, next_attempt_at=now - timedelta(seconds=1))
    waiting = make_account(alice, name="waiting")
    SyncState.objects.create(account=waiting, failures=2, next_attempt_at=now + timedelta(minutes=5))
    running = make_account(alice, name="running")
    SyncState.objects.create(
        account=running, started_at=now - timedelta(minutes=1), finished_at=now - timedelta(hours=1)
    )
    make_account(alice, name="auth", state="auth_failed")
    make_account(alice, name="off", state="disabled")
    assert set(due_account_ids()) == {new.pk, stale.pk, retry.pk, running.pk}
    # A pass that is running holds the account's lock: beat leaves it alone until the lock goes.
    from webmail.mail.actions.schedule import due_and_unlocked_ids
    from webmail.mail.locks import lock_key, redis_client

    redis_client().set(lock_key(running.pk), "someone", ex=30)
    try:
        assert set(due_and_unlocked_ids()) == {new.pk, stale.pk, retry.pk}
    finally:
        redis_client().delete(lock_key(running.pk))


def test_empty_threads_are_removed_and_others_kept(alice):
    account = make_account(alice)
    folder = Folder.objects.create(account=account, name="INBOX")
    kept = Thread.objects.create(account=account, subject="kept")
    Thread.objects.create(account=account, subject="empty")
    now = timezone.now()
    Message.objects.create(account=account, folder=folder, uid=1, thread=kept, internal_date=now, date=now)
    assert do_delete_empty_threads() == 1
    assert list(Thread.objects.values_list("subject", flat=True)) == ["kept"]


@pytest.mark.mailstack
def test_a_folder_limited_sync_does_not_count_as_a_complete_one(account):
    from webmail.mail.actions.sync import do_sync_account

    do_sync_account(account.pk, folder_names=["INBOX"])
    assert SyncState.objects.get(pk=account.pk).finished_at is None
    assert account.pk in due_account_ids()
    do_sync_account(account.pk)
    assert SyncState.objects.get(pk=account.pk).finished_at is not None
    assert account.pk not in due_account_ids()
