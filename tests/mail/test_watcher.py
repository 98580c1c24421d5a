"""IDLE watchers: a delivery wakes the watcher at once; leases give each account one watcher."""

from __future__ import annotations

import threading
import time

import pytest

from tests.mail.conftest import message
from webmail.mail import watcher as watcher_module
from webmail.mail.locks import redis_client
from webmail.mail.watcher import Watcher, lease_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mailstack]


class Recorder:
    """Collect on_change calls and let a test wait for them."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []
        self.event = threading.Event()

    def __call__(self, account_id: int, folder: str) -> None:
        self.calls.append((account_id, folder))
        self.event.set()

    def wait(self, count: int, seconds: float = 30.0) -> bool:
        deadline = time.monotonic() + seconds
        while len(self.calls) < count and time.monotonic() < deadline:
            self.event.wait(0.05)
            self.event.clear()
        return len(self.calls) >= count


@pytest.fixture
def clean_lease(account):
    redis_client().delete(lease_key(account.pk))
    yield
    redis_client().delete(lease_key(account.pk))


def test_a_delivery_wakes_the_watcher(account, mailstack, remote_user, clean_lease, monkeypatch):
    monkeypatch.setattr(watcher_module, "CHECK_EVERY", 0.5)
    seen = Recorder()
    w = Watcher(name="w1", on_change=seen)
    w.balance()
    assert w.accounts_held() == {account.pk}
    assert seen.wait(1), "the watcher syncs once when it starts watching"
    mailstack.deliver_lmtp(remote_user.address, message(1))
    assert seen.wait(2), "a delivery must wake the IDLE connection"
    assert seen.calls[-1] == (account.pk, "INBOX")
    w.stop()
    w.drop(account.pk)
    assert redis_client().get(lease_key(account.pk)) is None


def test_each_account_has_one_watcher_and_moves_when_its_watcher_dies(account, clean_lease, monkeypatch):
    monkeypatch.setattr(watcher_module, "CHECK_EVERY", 0.5)
    first, second = Watcher(name="first", on_change=Recorder()), Watcher(name="second", on_change=Recorder())
    first.balance()
    second.balance()
    assert first.accounts_held() == {account.pk}
    assert second.accounts_held() == set()
    # "first" dies without releasing anything: its lease simply stops being renewed.
    for watch in first.watches.values():
        watch.stop.set()
    redis_client().pexpire(lease_key(account.pk), 50)  # stand-in for LEASE_TTL passing
    time.sleep(0.1)
    second.balance()
    assert second.accounts_held() == {account.pk}
    assert redis_client().get(lease_key(account.pk)) == b"second"
    # A renewal by the dead one's zombie must not steal it back: it lets go instead.
    first.renew()
    assert first.accounts_held() == set()
    second.stop()
    second.drop(account.pk)


def test_capacity_limits_how_many_accounts_a_watcher_takes(account, clean_lease):
    w = Watcher(name="tiny", capacity=0, on_change=Recorder())
    w.balance()
    assert w.accounts_held() == set()


def test_a_failing_account_is_retried_later_not_in_a_loop(account, clean_lease, settings):
    settings.WEBMAIL_ALLOWED_MAIL_HOSTS = []  # the connection is refused by the network guard
    w = Watcher(name="w2", on_change=Recorder())
    w.balance()
    for watch in list(w.watches.values()):
        watch.thread.join(10)
    assert w.accounts_held() == set()
    assert account.pk in w.failed_at
    w.balance()  # within RETRY_AFTER: not claimed again
    assert w.accounts_held() == set()


def test_folders_marked_notify_are_watched_too_and_unmarking_stops_it(
    account, server, clean_lease, monkeypatch
):
    from tests.mail.conftest import message
    from webmail.mail.actions.folders import do_set_notify
    from webmail.mail.actions.sync import do_sync_account
    from webmail.mail.models import Folder

    monkeypatch.setattr(watcher_module, "CHECK_EVERY", 0.5)
    do_sync_account(account.pk)
    archive = Folder.objects.get(account=account, name="Archive")
    do_set_notify(archive, True)
    seen = Recorder()
    w = Watcher(name="w-notify", on_change=seen)
    w.balance()
    assert {f for _, f in w.watches} == {"INBOX", "Archive"}
    assert seen.wait(2)  # each watch syncs once as it starts
    before = len(seen.calls)
    server.append("Archive", message(42))
    assert seen.wait(before + 1), "a new message in a notify folder must wake its watch"
    assert (account.pk, "Archive") in seen.calls[before:]
    do_set_notify(archive, False)
    w.balance()
    assert {f for _, f in w.watches} == {"INBOX"}
    w.stop()
    w.drop(account.pk)


def test_the_inbox_cannot_be_unmarked(account):
    from webmail.mail.actions.folders import do_set_notify
    from webmail.mail.models import Folder

    inbox = Folder.objects.create(account=account, name="INBOX", special_use="inbox")
    do_set_notify(inbox, True)
    inbox.refresh_from_db()
    assert not inbox.notify
