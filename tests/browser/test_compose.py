"""Write a message with an attachment in the browser, send it, and find it at the recipient and in Sent."""

from __future__ import annotations

import email
import email.policy
import time
import uuid

import pytest
from playwright.sync_api import Page, expect

from accounts.models import Identity
from tests.accounts.factories import make_account
from tests.conftest import PASSWORD
from webmail.mail.actions.sync import do_sync_account
from webmail.mail.locks import redis_client
from webmail.mail.models import Folder, Message

pytestmark = [pytest.mark.browser, pytest.mark.mailstack, pytest.mark.django_db(transaction=True)]


def inbox_messages(mailstack, box) -> list[email.message.EmailMessage]:
    client = mailstack.imap_client(box)
    try:
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        fetched = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        return [email.message_from_bytes(d[b"BODY[]"], policy=email.policy.default) for d in fetched.values()]
    finally:
        client.logout()


def test_compose_with_an_attachment_send_and_see_it_delivered_and_in_sent(
    page: Page,
    live_asgi,
    alice,
    mailstack,
    mail_user,
    mail_settings,
    celery_worker_thread,
    tmp_path,
    artifacts_dir,
):
    mail_settings.WEBMAIL_UNDO_SEND_SECONDS = 0
    me, bob = mail_user("writer"), mail_user("bob")
    account = make_account(
        alice,
        password=me.password,
        email=me.address,
        incoming_host="127.0.0.1",
        incoming_port=mailstack.imaps_port,
        incoming_security="tls",
        incoming_username=me.address,
        smtp_host="127.0.0.1",
        smtp_port=mailstack.submission_port,
        smtp_security="starttls",
        smtp_username=me.address,
        state="ok",
    )
    Identity.objects.filter(account=account).update(display_name="Alice Example", email=me.address)
    redis_client().delete(f"webmail:lock:account:{account.pk}")
    assert not do_sync_account(account.pk).error

    attachment = tmp_path / "plan.pdf"
    attachment.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    subject = f"Plans {uuid.uuid4().hex[:6]}"

    page.goto(f"{live_asgi}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Write").first.click()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=10_000)
    page.get_by_label("To", exact=True).fill(f"Bob <{bob.address}>")
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("Message", exact=True).fill("Hello Bob,\n\nthe plan is attached.\n\nAlice")
    page.get_by_label("Attach files").set_input_files(str(attachment))
    expect(page.get_by_text("plan.pdf")).to_be_visible(timeout=10_000)
    page.screenshot(path=artifacts_dir / "compose.png", full_page=True)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#delivery-state")).to_contain_text("Sent", timeout=30_000)
    page.screenshot(path=artifacts_dir / "compose-sent.png", full_page=True)

    deadline = time.monotonic() + 20
    received = []
    while time.monotonic() < deadline and not received:
        received = [m for m in inbox_messages(mailstack, bob) if m["Subject"] == subject]
        time.sleep(0.2)
    assert len(received) == 1, "exactly one copy reaches the recipient"
    parts = list(received[0].iter_attachments())
    assert [p.get_filename() for p in parts] == ["plan.pdf"]
    (part,) = parts
    assert part.get_filename() == "plan.pdf"
    assert part.get_content() == attachment.read_bytes()

    do_sync_account(account.pk)
    sent = Folder.objects.get(account=account, special_use="sent")
    assert Message.objects.filter(folder=sent, subject=subject).count() == 1
    page.goto(f"{live_asgi}/mail/folder/{sent.pk}/")
    expect(page.locator("#list-pane").get_by_text(subject)).to_be_visible()
    page.screenshot(path=artifacts_dir / "sent-folder.png", full_page=True)
