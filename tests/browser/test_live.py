"""New mail appears on an open page without a reload: IDLE watcher -> Celery sync -> Channels -> page."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.accounts.factories import make_account
from tests.conftest import PASSWORD
from webmail.mail import watcher as watcher_module
from webmail.mail.actions.sync import do_sync_account
from webmail.mail.locks import redis_client
from webmail.mail.models import Folder, Message
from webmail.mail.watcher import Watcher, lease_key

pytestmark = [pytest.mark.browser, pytest.mark.mailstack, pytest.mark.django_db(transaction=True)]


def mail(subject: str) -> bytes:
    return (
        f"From: Carol Sender <carol@example.org>\r\nTo: someone@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\nDate: Fri, 27 Nov 2026 09:00:00 +0000\r\n\r\n"
        "Hello from the live test.\r\n"
    ).encode()


@pytest.fixture
def watched_account(alice, mailstack, mail_user, mail_settings, monkeypatch):
    """Alice's account on the stack, synced once, with a fast-checking watcher running in a thread."""
    box = mail_user("live")
    account = make_account(
        alice,
        password=box.password,
        email=box.address,
        incoming_host="127.0.0.1",
        incoming_port=mailstack.imaps_port,
        incoming_security="tls",
        incoming_username=box.address,
        state="ok",
    )
    redis_client().delete(lease_key(account.pk), f"webmail:lock:account:{account.pk}")
    assert not do_sync_account(account.pk).error
    monkeypatch.setattr(watcher_module, "CHECK_EVERY", 0.5)
    monkeypatch.setattr(watcher_module, "RENEW_EVERY", 0.5)
    watchers: list[tuple[Watcher, threading.Thread]] = []

    def start(name: str) -> Watcher:
        w = Watcher(name=name)
        thread = threading.Thread(target=w.run_forever, daemon=True)
        thread.start()
        watchers.append((w, thread))
        return w

    account.box = box
    account.start_watcher = start
    yield account
    for w, thread in watchers:
        w.stop()
        thread.join(10)
        for watch in [*w.watches.values(), *w.stopped]:
            if watch.thread:
                watch.thread.join(10)
    redis_client().delete(lease_key(account.pk))


def open_inbox(page: Page, base: str, account) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    inbox = Folder.objects.get(account=account, name="INBOX")
    page.goto(f"{base}/mail/folder/{inbox.pk}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=10_000)


def wait_cached(account, subject: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if Message.objects.filter(account=account, subject=subject).exists():
            return
        time.sleep(0.1)
    raise AssertionError(f"{subject!r} never reached the cache")


def test_new_mail_appears_in_the_open_inbox_without_reload(
    page: Page, live_asgi, watched_account, mailstack, celery_worker_thread, artifacts_dir
):
    watched_account.start_watcher("live-1")
    open_inbox(page, live_asgi, watched_account)
    page.evaluate("window.__marker = 'same page'")
    subject = f"Live {uuid.uuid4().hex[:8]}"
    mailstack.deliver(watched_account.box.address, mail(subject))
    expect(page.locator("#list-pane").get_by_text(subject)).to_be_visible(timeout=20_000)
    assert page.evaluate("window.__marker") == "same page", "the page must not have reloaded"
    expect(page).to_have_title(__import__("re").compile(r"^\(1\) "))
    page.screenshot(path=artifacts_dir / "live-new-mail.png", full_page=True)


def test_mail_delivered_while_offline_appears_after_reconnect(
    page: Page, live_asgi, watched_account, mailstack, celery_worker_thread
):
    watched_account.start_watcher("live-2")
    open_inbox(page, live_asgi, watched_account)
    page.evaluate("window.webmailLive.pause()")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "offline")
    subject = f"Offline {uuid.uuid4().hex[:8]}"
    mailstack.deliver(watched_account.box.address, mail(subject))
    wait_cached(watched_account, subject)
    time.sleep(0.5)
    expect(page.locator("#list-pane").get_by_text(subject)).to_have_count(0)
    page.evaluate("window.webmailLive.resume()")
    expect(page.locator("#list-pane").get_by_text(subject)).to_be_visible(timeout=10_000)


def test_mail_still_arrives_when_the_watcher_dies(
    page: Page, live_asgi, watched_account, mailstack, celery_worker_thread, monkeypatch
):
    monkeypatch.setattr(watcher_module, "LEASE_TTL", 2)
    first = watched_account.start_watcher("dies")
    deadline = time.monotonic() + 10
    while watched_account.pk not in first.accounts_held() and time.monotonic() < deadline:
        time.sleep(0.1)
    # The first watcher dies without a word: its IDLE threads stop, its lease is not renewed.
    first.stopping.set()
    for watch in list(first.watches.values()):
        watch.stop.set()
    first.watches.clear()
    watched_account.start_watcher("survivor")
    open_inbox(page, live_asgi, watched_account)
    subject = f"Failover {uuid.uuid4().hex[:8]}"
    mailstack.deliver(watched_account.box.address, mail(subject))
    expect(page.locator("#list-pane").get_by_text(subject)).to_be_visible(timeout=30_000)
    assert redis_client().get(lease_key(watched_account.pk)) == b"survivor"
