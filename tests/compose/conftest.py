"""Fixtures for compose tests: a scripted aiosmtpd server, accounts pointing at it or at the real stack."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from accounts.models import Identity
from tests.accounts.factories import make_account
from webmail.mail.locks import redis_client


@dataclass
class Script:
    """What the fake server answers to DATA, in order (then "250 OK"), and what it received."""

    replies: list[str] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    data_seen: threading.Event = field(default_factory=threading.Event)


class Handler:
    def __init__(self, script: Script) -> None:
        self.script = script

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self.script.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        import asyncio

        self.script.data_seen.set()
        if self.script.replies:
            reply = self.script.replies.pop(0)
            if not reply.startswith("250"):
                return reply
        self.script.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        if self.script.delay:
            await asyncio.sleep(self.script.delay)
        return "250 2.0.0 Ok: queued"


def _authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    ok = getattr(auth_data, "password", b"") == b"pw"
    # aiosmtpd: a failed AUTH must not be "handled" or the client hangs.
    return AuthResult(success=ok, handled=False if not ok else True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake_smtp() -> Iterator[tuple[Script, int]]:
    script = Script()
    port = _free_port()
    controller = Controller(
        Handler(script),
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,
        decode_data=False,
    )
    controller.start()
    try:
        yield script, port
    finally:
        controller.stop()


@pytest.fixture
def smtp_settings(settings):
    settings.WEBMAIL_ALLOWED_MAIL_HOSTS = ["localhost", "127.0.0.1"]
    settings.WEBMAIL_CONNECT_TIMEOUT = 5
    settings.WEBMAIL_UNDO_SEND_SECONDS = 0
    return settings


@pytest.fixture
def fake_account(alice, fake_smtp, smtp_settings):
    """Alice's account whose SMTP server is the scripted aiosmtpd (no folders: nothing to file)."""
    _script, port = fake_smtp
    acc = make_account(
        alice, email="alice@example.test", smtp_host="127.0.0.1", smtp_port=port, smtp_security="none"
    )
    Identity.objects.filter(account=acc).update(display_name="Alice Example")
    return acc


@pytest.fixture
def stack_account_factory(mailstack, mail_settings, mail_user):
    """Return make(user, mail_user) -> an account on the real stack (IMAPS + submission STARTTLS)."""

    def make(user, remote, name="Alice Example"):
        acc = make_account(
            user,
            password=remote.password,
            email=remote.address,
            incoming_host="127.0.0.1",
            incoming_port=mailstack.imaps_port,
            incoming_security="tls",
            incoming_username=remote.address,
            smtp_host="127.0.0.1",
            smtp_port=mailstack.submission_port,
            smtp_security="starttls",
            smtp_username=remote.address,
        )
        Identity.objects.filter(account=acc).update(display_name=name, email=remote.address)
        redis_client().delete(f"webmail:lock:account:{acc.pk}", f"webmail:sync-again:{acc.pk}")
        return acc

    return make


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Return PREDICATE()'s first truthy value, polling until TIMEOUT."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(interval)
