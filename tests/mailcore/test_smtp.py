"""submit() through the real Postfix submission ports, and an in-test aiosmtpd for 4xx/5xx replies."""

from __future__ import annotations

import time

import pytest
from aiosmtpd.controller import Controller

from tests.mailcore.conftest import free_port
from webmail.mailcore.errors import MailError, SmtpReplyError
from webmail.mailcore.smtp import submit
from webmail.mailcore.types import Endpoint

pytestmark = pytest.mark.mailstack


def raw_message(sender: str, rcpt: str, subject: str = "Hello") -> bytes:
    return (
        f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{time.time_ns()}@example.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Grüße!\r\n.leading dot\r\n"
    ).encode()


def wait_for_inbox(mailstack, user, count: int = 1, timeout: float = 10) -> list[bytes]:
    deadline = time.monotonic() + timeout
    while True:
        with mailstack.imap_client(user) as client:
            client.select_folder("INBOX", readonly=True)
            uids = client.search()
            if len(uids) >= count:
                return [d[b"BODY[]"] for d in client.fetch(uids, ["BODY.PEEK[]"]).values()]
        if time.monotonic() > deadline:
            raise AssertionError(f"{user.address} got {len(uids)} of {count} messages")
        time.sleep(0.02)


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_submit_delivers_through_postfix(mailstack, mail_user, endpoint, stack_tls, loopback_guard, security):
    sender, rcpt = mail_user(), mail_user()
    result = submit(
        endpoint(sender, "smtp", security),
        tls=stack_tls,
        guard=loopback_guard,
        mail_from=sender.address,
        rcpts=[rcpt.address],
        raw=raw_message(sender.address, rcpt.address).replace(b"\r\n", b"\n"),  # bare LFs get fixed
    )
    assert result.accepted == (rcpt.address,) and result.refused == {}
    assert result.reply.startswith("250")
    [body] = wait_for_inbox(mailstack, rcpt)
    assert "Grüße!\r\n.leading dot\r\n".encode() in body
    assert b"Received: from localhost" in body


def test_postfix_accepts_utf8_headers_with_smtputf8(mail_user, endpoint, stack_tls, loopback_guard):
    # Only acceptance is checked: Dovecot 2.3's LMTP lacks SMTPUTF8, so Postfix bounces it later.
    sender, rcpt = mail_user(), mail_user()
    result = submit(
        endpoint(sender, "smtp", "starttls"),
        tls=stack_tls,
        guard=loopback_guard,
        mail_from=sender.address,
        rcpts=[rcpt.address],
        raw=raw_message(sender.address, rcpt.address, subject="Über Äpfel"),
    )
    assert result.accepted == (rcpt.address,)


def test_submit_with_a_wrong_password_is_an_auth_error(mail_user, endpoint, stack_tls, loopback_guard):
    sender = mail_user()
    with pytest.raises(MailError) as info:
        submit(
            endpoint(sender, "smtp", "tls", password="nope"),
            tls=stack_tls,
            guard=loopback_guard,
            mail_from=sender.address,
            rcpts=["x@example.test"],
            raw=b"Subject: x\r\n\r\nx\r\n",
        )
    assert info.value.kind == "auth"


# -- replies a real server will not give on demand


class Scripted:
    """aiosmtpd handler: per-address RCPT replies and a fixed MAIL/DATA reply."""

    def __init__(self) -> None:
        self.rcpt_replies: dict[str, str] = {}
        self.mail_reply = "250 OK"
        self.data_reply = "250 2.0.0 Ok: queued as TEST1"
        self.received: list[tuple[str, list[str], bytes, list[str]]] = []
        self.mail_options: list[str] = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mail_options = list(mail_options)
        if self.mail_reply.startswith("250"):
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
        return self.mail_reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address, "250 OK")
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content, []))
        return self.data_reply


@pytest.fixture
def scripted():
    handler = Scripted()
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), decode_data=False, enable_SMTPUTF8=True
    )
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def scripted_no_utf8():
    handler = Scripted()
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), decode_data=False, enable_SMTPUTF8=False
    )
    controller.start()
    yield handler, controller.port
    controller.stop()


def send_to(
    port: int, stack_tls, guard, rcpts, raw=b"Subject: t\r\n\r\nbody\r\n", mail_from="a@example.test"
):
    ep = Endpoint("127.0.0.1", port, "none", username="", password="", timeout=5)
    return submit(ep, tls=stack_tls, guard=guard, mail_from=mail_from, rcpts=rcpts, raw=raw)


def test_some_recipients_refused_are_reported_and_the_rest_sent(scripted, stack_tls, loopback_guard):
    handler, port = scripted
    handler.rcpt_replies = {
        "busy@example.test": "450 4.2.1 Mailbox busy",
        "gone@example.test": "550 5.1.1 No such user",
    }
    result = send_to(
        port, stack_tls, loopback_guard, ["ok@example.test", "busy@example.test", "gone@example.test"]
    )
    assert result.accepted == ("ok@example.test",)
    assert result.refused == {
        "busy@example.test": (450, "4.2.1 Mailbox busy"),
        "gone@example.test": (550, "5.1.1 No such user"),
    }
    assert result.reply == "250 2.0.0 Ok: queued as TEST1"
    assert handler.received[0][1] == ["ok@example.test"]


def test_all_recipients_refused_temporarily_is_temporary(scripted, stack_tls, loopback_guard):
    handler, port = scripted
    handler.rcpt_replies = {"busy@example.test": "450 4.2.1 Busy", "gone@example.test": "550 5.1.1 Gone"}
    with pytest.raises(SmtpReplyError) as info:
        send_to(port, stack_tls, loopback_guard, ["busy@example.test", "gone@example.test"])
    err = info.value
    assert err.kind == "temporary" and err.temporary and err.code == 450
    assert set(err.refused) == {"busy@example.test", "gone@example.test"}
    assert handler.received == []


def test_all_recipients_refused_permanently_is_permanent(scripted, stack_tls, loopback_guard):
    handler, port = scripted
    handler.rcpt_replies = {"gone@example.test": "550 5.1.1 Gone"}
    with pytest.raises(SmtpReplyError) as info:
        send_to(port, stack_tls, loopback_guard, ["gone@example.test"])
    assert info.value.kind == "permanent" and info.value.code == 550
    assert "gone@example.test" in str(info.value)


@pytest.mark.parametrize(
    ("reply", "kind"), [("451 4.3.0 Try later", "temporary"), ("554 5.7.1 Spam", "permanent")]
)
def test_data_refusal_is_classified(scripted, stack_tls, loopback_guard, reply, kind):
    handler, port = scripted
    handler.data_reply = reply
    with pytest.raises(SmtpReplyError) as info:
        send_to(port, stack_tls, loopback_guard, ["ok@example.test"])
    assert info.value.kind == kind
    assert info.value.code == int(reply[:3])
    assert reply[4:] in info.value.reply


@pytest.mark.parametrize(
    ("reply", "kind"), [("421 4.7.0 Too busy", "temporary"), ("553 5.7.1 Not yours", "permanent")]
)
def test_sender_refusal_is_classified(scripted, stack_tls, loopback_guard, reply, kind):
    handler, port = scripted
    handler.mail_reply = reply
    with pytest.raises(SmtpReplyError) as info:
        send_to(port, stack_tls, loopback_guard, ["ok@example.test"])
    assert info.value.kind == kind


def test_smtputf8_is_requested_only_when_needed(scripted, stack_tls, loopback_guard):
    handler, port = scripted
    send_to(port, stack_tls, loopback_guard, ["ok@example.test"])
    assert "SMTPUTF8" not in handler.mail_options
    send_to(port, stack_tls, loopback_guard, ["jörg@example.test"], mail_from="zoë@example.test")
    assert "SMTPUTF8" in handler.mail_options
    assert handler.received[-1][1] == ["jörg@example.test"]


def test_utf8_without_smtputf8_is_a_capability_error(scripted_no_utf8, stack_tls, loopback_guard):
    _handler, port = scripted_no_utf8
    with pytest.raises(MailError) as info:
        send_to(port, stack_tls, loopback_guard, ["jörg@example.test"])
    assert info.value.kind == "capability"
    assert "SMTPUTF8" in str(info.value)


def test_lines_reach_the_server_with_crlf(scripted, stack_tls, loopback_guard):
    handler, port = scripted
    send_to(port, stack_tls, loopback_guard, ["ok@example.test"], raw=b"Subject: t\n\nline\n.dot\n")
    assert handler.received[-1][2] == b"Subject: t\r\n\r\nline\r\n.dot\r\n"
