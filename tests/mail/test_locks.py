"""The per-account Redis lock: one sync at a time, expiry frees a dead holder's lock."""

from __future__ import annotations

import time

import pytest

from webmail.mail.actions.sync import do_sync_account
from webmail.mail.locks import (
    LockLost,
    account_lock,
    break_lock,
    lock_key,
    redis_client,
    request_again,
    take_again_request,
)

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def account_id() -> int:
    redis_client().delete(lock_key(424242), "webmail:sync-again:424242")
    return 424242


def test_a_second_holder_gets_nothing_until_the_first_releases(account_id):
    with account_lock(account_id, ttl=10) as first:
        assert first is not None
        with account_lock(account_id, ttl=10) as second:
            assert second is None
    with account_lock(account_id, ttl=10) as third:
        assert third is not None


def test_lock_expiry_frees_a_killed_holders_lock(account_id):
    key = lock_key(account_id)
    redis_client().set(key, "token-of-a-dead-worker", px=200)  # what a SIGKILLed sync leaves behind
    with account_lock(account_id) as blocked:
        assert blocked is None
    time.sleep(0.25)
    with account_lock(account_id) as lock:
        assert lock is not None


def test_an_expired_lock_taken_by_another_is_neither_extended_nor_released(account_id):
    with account_lock(account_id, ttl=10) as lock:
        redis_client().set(lock_key(account_id), "someone else")
        with pytest.raises(LockLost):
            lock.extend()
    assert redis_client().get(lock_key(account_id)) == b"someone else"
    assert break_lock(account_id)
    assert not break_lock(account_id)


def test_again_requests_are_taken_once(account_id):
    assert not take_again_request(account_id)
    request_again(account_id)
    assert take_again_request(account_id)
    assert not take_again_request(account_id)


@pytest.mark.mailstack
def test_a_sync_while_another_runs_is_skipped_and_asks_for_another_round(account, server, command_counter):
    with account_lock(account.pk) as held:
        assert held is not None
        report = do_sync_account(account.pk)
        assert report.skipped
        assert command_counter() == []  # not even a connection
    # The holder sees the request and goes round once more.
    assert redis_client().get(f"webmail:sync-again:{account.pk}")
    report = do_sync_account(account.pk)
    assert not report.skipped and report.error == ""
    assert not redis_client().exists(f"webmail:sync-again:{account.pk}")


@pytest.mark.mailstack
def test_the_lock_is_held_during_the_sync_and_released_after(account, server):
    seen = []
    from tests.mail.conftest import append_many, message

    append_many(server, "INBOX", [message(i) for i in range(3)])
    do_sync_account(account.pk, progress=lambda *a: seen.append(redis_client().pttl(lock_key(account.pk))))
    assert seen and all(ttl > 0 for ttl in seen)
    assert not redis_client().exists(lock_key(account.pk))
