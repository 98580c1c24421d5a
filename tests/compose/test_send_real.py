"""Sending through the real Postfix + Dovecot: what arrives, threading, attachments, drafts, Sent."""

from __future__ import annotations

import email
import email.policy

import pytest

from accounts.models import Identity
from webmail.compose.actions import drafts, outbox
from webmail.compose.models import Kind, OutgoingMessage, State
from webmail.mail.actions import changes
from webmail.mail.actions.sync import do_sync_account
from webmail.mail.models import Message

from .conftest import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]


def inbox_messages(mailstack, user, folder="INBOX"):
    client = mailstack.imap_client(user)
    try:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        if not uids:
            return []
        return [
            email.message_from_bytes(d[b"BODY[]"], policy=email.policy.default)
            for _uid, d in sorted(client.fetch(uids, ["BODY.PEEK[]"]).items())
        ]
    finally:
        client.logout()


def arrived(mailstack, user, n=1, folder="INBOX"):
    return wait_for(lambda: (m := inbox_messages(mailstack, user, folder)) and len(m) >= n and m)


@pytest.fixture
def people(alice, mail_user, stack_account_factory):
    me, bob, carol, dave = mail_user("alice"), mail_user("bob"), mail_user("carol"), mail_user("dave")
    account = stack_account_factory(alice, me, name="Alice Ünal")
    assert not do_sync_account(account.pk).error
    return account, me, bob, carol, dave


def send(user, account, settings, **values):
    settings.WEBMAIL_UNDO_SEND_SECONDS = 0
    identity = Identity.objects.get(account=account)
    kind = values.pop("kind", Kind.NEW)
    source = values.pop("source", None)
    files = values.pop("files", [])
    o = drafts.do_create(user, identity, kind=kind, source=source)
    drafts.do_update_draft(o, identity, values)
    for name, data in files:
        drafts.do_add_attachment(o, name, "", data, per_file=10**8, total=10**8)
    o = outbox.do_queue_send(o, delay=0)
    assert outbox.do_deliver(o.pk) == "sent", OutgoingMessage.objects.get(pk=o.pk).last_error
    return OutgoingMessage.objects.get(pk=o.pk)


def test_a_sent_message_arrives_with_exactly_the_expected_headers_and_no_bcc(people, mailstack, settings):
    account, me, bob, carol, dave = people
    o = send(
        account.user,
        account,
        settings,
        to=f"Bob Bäcker <{bob.address}>",
        cc=carol.address,
        bcc=dave.address,
        subject="Grüße aus Köln",
        body_text="Hallo zusammen,\n\nschöne Grüße.\n",
    )
    for who in (bob, carol, dave):
        (msg,) = arrived(mailstack, who)
        assert msg["Subject"] == "Grüße aus Köln"
        assert msg["From"] == f"Alice Ünal <{me.address}>"
        assert msg["To"] == f"Bob Bäcker <{bob.address}>"
        assert msg["Cc"] == carol.address
        assert msg["Message-ID"] == f"<{o.message_id}>"
        assert msg["Date"]
        assert msg["Bcc"] is None
        assert dave.address not in msg.as_string()
        assert msg.get_content().replace("\r\n", "\n") == "Hallo zusammen,\n\nschöne Grüße.\n"
        own = [k.lower() for k in msg.keys()]
        assert "bcc" not in own
        # Exactly the headers the message was built with, plus what the MTAs add on the way.
        ours = {
            "from",
            "to",
            "cc",
            "subject",
            "date",
            "message-id",
            "mime-version",
            "content-type",
            "content-transfer-encoding",
        }
        added = {"return-path", "delivered-to", "received", "x-original-to"}
        assert set(own) - added == ours


def test_the_sent_copy_goes_to_sent_without_bcc_and_the_draft_copy_goes(people, mailstack, settings):
    account, me, bob, _carol, dave = people
    identity = Identity.objects.get(account=account)
    o = drafts.do_create(account.user, identity)
    drafts.do_update_draft(
        o, identity, {"to": bob.address, "bcc": dave.address, "subject": "Filed", "body_text": "x"}
    )
    assert drafts.do_store_draft(o)
    assert changes.do_apply_changes(account.pk) == "done"
    assert len(inbox_messages(mailstack, me, "Drafts")) == 1
    settings.WEBMAIL_UNDO_SEND_SECONDS = 0
    outbox.do_queue_send(OutgoingMessage.objects.get(pk=o.pk))
    assert outbox.do_deliver(o.pk) == "sent"
    changes.do_apply_changes(account.pk)
    (copy,) = inbox_messages(mailstack, me, "Sent")
    assert copy["Message-ID"] == f"<{o.message_id}>"
    assert copy["Bcc"] is None and dave.address not in copy.as_string()
    assert inbox_messages(mailstack, me, "Drafts") == []
    assert arrived(mailstack, dave)


def test_a_reply_threads_and_marks_the_original_answered(people, mailstack, settings):
    account, me, bob, _c, _d = people
    mailstack.deliver(
        me.address,
        (
            f"From: Bob <{bob.address}>\r\nTo: {me.address}\r\nSubject: Re: Plans\r\n"
            "Message-ID: <orig@example.test>\r\nReferences: <root@example.test>\r\n"
            "In-Reply-To: <root@example.test>\r\n\r\nShall we?\r\n"
        ).encode(),
    )
    do_sync_account(account.pk)
    original = Message.objects.get(account=account, message_id="orig@example.test")
    init = drafts.initial_for(account.user, Kind.REPLY, original)
    assert init.subject == "Re: Plans"
    assert init.to == f"Bob <{bob.address}>"
    assert "> Shall we?" in init.body_text
    send(
        account.user,
        account,
        settings,
        kind=Kind.REPLY,
        source=original,
        to=init.to,
        subject=init.subject,
        body_text="Yes.\n" + init.body_text,
    )
    (reply,) = arrived(mailstack, bob)
    assert reply["In-Reply-To"] == "<orig@example.test>"
    assert reply["References"] == "<root@example.test> <orig@example.test>"
    assert reply["Subject"] == "Re: Plans"
    original.refresh_from_db()
    assert original.answered
    changes.do_apply_changes(account.pk)
    client = mailstack.imap_client(me)
    client.select_folder("INBOX")
    flags = list(client.get_flags(client.search("ALL")).values())[0]
    client.logout()
    assert b"\\Answered" in flags


def test_reply_all_leaves_out_the_persons_own_addresses(people, mailstack):
    account, me, bob, carol, _d = people
    mailstack.deliver(
        me.address,
        f"From: {bob.address}\r\nTo: {me.address}, {carol.address}\r\nSubject: All\r\nMessage-ID: <all@x>\r\n\r\nx\r\n".encode(),
    )
    do_sync_account(account.pk)
    original = Message.objects.get(account=account, message_id="all@x")
    init = drafts.initial_for(account.user, Kind.REPLY_ALL, original)
    assert init.to == bob.address
    assert init.cc == carol.address


def test_attachments_arrive_byte_exact(people, mailstack, settings):
    account, _me, bob, _c, _d = people
    blob = bytes(range(256)) * 1000
    text = "naïve line\r\nbare lf\nno end".encode()
    send(
        account.user,
        account,
        settings,
        to=bob.address,
        subject="Files",
        body_text="see",
        files=[("données.bin", blob), ("notes.txt", text), ("pic.png", b"\x89PNG\r\n\x1a\n" + blob[:100])],
    )
    (msg,) = arrived(mailstack, bob)
    atts = {a.get_filename(): a for a in msg.iter_attachments()}
    assert atts["données.bin"].get_payload(decode=True) == blob
    assert atts["notes.txt"].get_payload(decode=True) == text
    assert atts["pic.png"].get_content_type() == "image/png"


def test_forward_as_attachment_carries_the_original(people, mailstack, settings):
    account, me, bob, _c, _d = people
    raw = f"From: x@example.org\r\nTo: {me.address}\r\nSubject: Orig\r\nMessage-ID: <fw@x>\r\n\r\nBody\r\n".encode()
    mailstack.deliver(me.address, raw)
    do_sync_account(account.pk)
    original = Message.objects.get(account=account, message_id="fw@x")
    send(
        account.user,
        account,
        settings,
        kind=Kind.FORWARD_ATTACHED,
        source=original,
        to=bob.address,
        subject="Fwd: Orig",
        body_text="FYI",
    )
    (msg,) = arrived(mailstack, bob)
    (att,) = list(msg.iter_attachments())
    assert att.get_content_type() == "message/rfc822"
    assert att.get_content()["Message-ID"] == "<fw@x>"


def test_a_draft_round_trips_through_the_drafts_folder_with_its_attachments(people, mailstack, alice):
    account, me, bob, _c, dave = people
    identity = Identity.objects.get(account=account)
    o = drafts.do_create(alice, identity)
    drafts.do_update_draft(
        o, identity, {"to": bob.address, "bcc": dave.address, "subject": "Half done", "body_text": "So far…"}
    )
    drafts.do_add_attachment(o, "plan.pdf", "", b"%PDF-1.4 x", per_file=10**6, total=10**6)
    assert drafts.do_store_draft(o)
    assert not drafts.do_store_draft(o)  # unchanged: no second APPEND
    drafts.do_update_draft(o, identity, {"body_text": "So far, more."})
    assert drafts.do_store_draft(o)
    changes.do_apply_changes(account.pk)
    found = inbox_messages(mailstack, me, "Drafts")
    assert len(found) == 1, [(m["Subject"], m.get_body().get_content()) for m in found]
    (copy,) = found
    assert copy["Subject"] == "Half done" and copy["Bcc"] is None
    assert [a.get_filename() for a in copy.iter_attachments()] == ["plan.pdf"]
    # Reopening it from the server alone (as another device would) restores text and attachments.
    OutgoingMessage.objects.all().delete()
    do_sync_account(account.pk)
    cached = Message.objects.get(account=account, folder__special_use="drafts")
    init = drafts.initial_for(alice, Kind.DRAFT, cached)
    assert init.to == bob.address and init.subject == "Half done" and "So far, more." in init.body_text
    reopened = drafts.do_create(alice, identity, kind=Kind.DRAFT, source=cached)
    (att,) = reopened.attachments.all()
    assert (att.filename, bytes(att.data)) == ("plan.pdf", b"%PDF-1.4 x")
    assert reopened.draft_message_id == cached.pk


def test_a_worker_killed_after_submission_is_found_in_sent_when_the_server_filed_it(
    people, mailstack, settings
):
    """Providers that file sent mail themselves: the lookup in Sent turns "uncertain" into "sent"."""
    from datetime import timedelta

    from django.utils import timezone

    account, me, bob, _c, _d = people
    identity = Identity.objects.get(account=account)
    o = drafts.do_create(account.user, identity)
    drafts.do_update_draft(o, identity, {"to": bob.address, "subject": "Once", "body_text": "x"})
    o = outbox.do_queue_send(o, delay=0)
    # The worker submitted it (and the server filed a copy in Sent), then died before recording it.
    from accounts.connection import net_guard, smtp_endpoint, tls_config
    from webmail.compose.submission import submit

    submit(
        smtp_endpoint(account),
        tls=tls_config(),
        guard=net_guard(),
        mail_from=o.mail_from,
        rcpts=o.rcpts,
        raw=bytes(o.raw),
        before_data=lambda: None,
    )
    client = mailstack.imap_client(me)
    client.append("Sent", bytes(o.raw), flags=[b"\\Seen"])
    client.logout()
    OutgoingMessage.objects.filter(pk=o.pk).update(
        state=State.SENDING,
        attempts=1,
        data_started_at=timezone.now(),
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert outbox.do_deliver(o.pk) == "sent"
    assert len(arrived(mailstack, bob)) == 1
    assert len(inbox_messages(mailstack, me, "Sent")) == 1
