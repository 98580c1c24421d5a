"""POP3 servers that misbehave: a connection cut mid-RETR (a TCP proxy in front of the real Dovecot),
a -ERR from the real Dovecot, and wrong octet counts (a scripted server: Dovecot never miscounts)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from tests.mail.conftest import message
from tests.mail.test_pop3_download import cached_ids, deliver, make_pop_account, server_messages
from webmail.mail.actions.pop3 import do_fetch_pop3
from webmail.mail.models import Message, Pop3Download, SyncState

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]


class Proxy:
    """A TCP proxy to the real server that can cut the connection or answer a command itself.

    cut_after: close both sides once this many bytes came from the server.
    refuse: {command: reply} sent to the client instead of forwarding the command (plain text only).
    """

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.cut_after: int | None = None
        self.refuse: dict[bytes, bytes] = {}
        self.cuts = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._down, args=(server, client), daemon=True).start()
            threading.Thread(target=self._up, args=(client, server), daemon=True).start()

    def _down(self, server: socket.socket, client: socket.socket) -> None:
        sent = 0
        try:
            while data := server.recv(65536):
                if self.cut_after is not None and sent + len(data) >= self.cut_after:
                    client.sendall(data[: self.cut_after - sent])
                    self.cuts += 1
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (client, server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _up(self, client: socket.socket, server: socket.socket) -> None:
        try:
            # A client waits for each reply, so a plain-text command arrives as one chunk.
            while data := client.recv(65536):
                reply = self.refuse.pop(data.strip().upper(), None)
                if reply is not None:
                    client.sendall(reply)
                else:
                    server.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def remote(mail_user):
    return mail_user("popfault")


@pytest.fixture
def proxy(mailstack) -> Iterator[Proxy]:
    p = Proxy(mailstack.pop3_port)
    yield p
    p.close()


def test_a_connection_cut_mid_retr_is_recorded_and_retried_with_nothing_lost(
    mailstack, remote, alice, mail_settings, proxy
):
    account = make_pop_account(alice, remote, proxy.port, pop3_leave_on_server="delete")
    for n in range(1, 21):
        mailstack.deliver_lmtp(remote.address, message(n, size=4000))
    proxy.cut_after = 45_000  # TLS and all: in the middle of about the tenth message

    report = do_fetch_pop3(account.pk)

    assert proxy.cuts == 1
    assert "closed the connection while retrieving message" in report.error
    kept = Message.objects.filter(account=account).count()
    assert 0 < kept < 20  # what arrived whole before the cut is stored ...
    assert Pop3Download.objects.filter(account=account).count() == kept
    assert len(server_messages(mailstack, remote)) == 20  # ... and nothing was deleted without QUIT
    account.refresh_from_db()
    assert account.state == "connection_failing" and account.state_reason == report.error
    state = SyncState.objects.get(pk=account.pk)
    assert state.failures == 1 and state.next_attempt_at > timezone.now()
    assert (state.progress_done, state.progress_total) == (kept, 20)

    proxy.cut_after = None
    again = do_fetch_pop3(account.pk)

    assert (again.error, again.new, again.deleted) == ("", 20 - kept, 20)
    assert cached_ids(account) == sorted(f"m{n}@test" for n in range(1, 21))
    assert server_messages(mailstack, remote) == {}
    account.refresh_from_db()
    assert (account.state, account.state_reason) == ("ok", "")
    assert SyncState.objects.get(pk=account.pk).failures == 0


def test_a_refused_retr_skips_that_message_and_retries_it_later(mailstack, remote, alice, mail_settings):
    account = make_pop_account(alice, remote, mailstack.pop3_port, pop3_leave_on_server="delete")
    deliver(mailstack, remote, [1, 2, 3])
    maildir = Path(mailstack.maildir_root) / remote.address / "Maildir"
    (second,) = [f for f in maildir.glob("*/*") if f.is_file() and b"<m2@test>" in f.read_bytes()]
    second.chmod(0)  # Dovecot (as the mail user) cannot open it: RETR 2 gets -ERR, mid-pipeline

    report = do_fetch_pop3(account.pk)

    assert (report.new, report.deleted, len(report.failed)) == (2, 2, 1)
    assert "refused a command while retrieving message 2" in report.error
    assert cached_ids(account) == ["m1@test", "m3@test"]
    for f in maildir.glob("*/*"):  # Dovecot moved it from new/ to cur/
        if f.is_file() and f.stat().st_mode & 0o777 == 0:
            f.chmod(0o600)
    assert list(server_messages(mailstack, remote)) == report.failed
    account.refresh_from_db()
    assert account.state == "connection_failing" and "will be tried again" in account.state_reason
    assert SyncState.objects.get(pk=account.pk).next_attempt_at is not None

    again = do_fetch_pop3(account.pk)

    assert (again.new, again.deleted, again.failed, again.error) == (1, 1, [], "")
    assert cached_ids(account) == ["m1@test", "m2@test", "m3@test"]
    assert server_messages(mailstack, remote) == {}


class ScriptedPop3:
    """A tiny POP3 server (one message, USER/PASS) whose RETR answer a test chooses per call."""

    def __init__(self, listed: int, retr: Callable[[int], bytes]) -> None:
        self.listed, self.retr = listed, retr
        self.calls = 0
        self.deleted = False
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        dele = False
        with conn, conn.makefile("rb") as f:
            conn.sendall(b"+OK scripted\r\n")
            for line in f:
                cmd = line.strip().upper()
                if cmd == b"CAPA":
                    conn.sendall(b"+OK\r\nUSER\r\nUIDL\r\n.\r\n")
                elif cmd.startswith((b"USER", b"PASS", b"NOOP")):
                    conn.sendall(b"+OK\r\n")
                elif cmd == b"LIST":
                    conn.sendall(b"+OK 1 message\r\n1 %d\r\n.\r\n" % self.listed)
                elif cmd == b"UIDL":
                    conn.sendall(b"+OK\r\n1 scripted-1\r\n.\r\n")
                elif cmd == b"RETR 1":
                    self.calls += 1
                    conn.sendall(b"+OK\r\n" + self.retr(self.calls) + b".\r\n")
                elif cmd == b"DELE 1":
                    dele = True
                    conn.sendall(b"+OK\r\n")
                elif cmd == b"QUIT":
                    self.deleted = self.deleted or dele
                    conn.sendall(b"+OK bye\r\n")
                    return
                else:
                    conn.sendall(b"-ERR unknown\r\n")

    def close(self) -> None:
        self.sock.close()


def body(octets: int, tag: str = "") -> bytes:
    """Return a CRLF message of exactly OCTETS octets."""
    head = (
        f"From: scripted@example.org\r\nSubject: octets {tag}\r\nMessage-ID: <octets@test>\r\n\r\n".encode()
    )
    return head + b"x" * (octets - len(head) - 2) + b"\r\n"


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedPop3]]:
    servers: list[ScriptedPop3] = []

    def make(listed: int, retr: Callable[[int], bytes]) -> ScriptedPop3:
        servers.append(ScriptedPop3(listed, retr))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_a_short_transfer_is_retried_later_with_nothing_lost(alice, mail_user, mail_settings, scripted):
    healthy = False
    server = scripted(500, lambda call: body(500) if healthy else body(200 + call))  # short, never the same
    account = make_pop_account(
        alice, mail_user(), server.port, incoming_security="none", pop3_leave_on_server="delete"
    )

    report = do_fetch_pop3(account.pk)

    assert (report.new, report.failed) == (0, ["scripted-1"])
    assert "listed 500" in report.error and "incomplete" in report.error
    assert not server.deleted
    assert not Pop3Download.objects.filter(account=account).exists()
    account.refresh_from_db()
    assert account.state == "connection_failing"

    healthy = True
    again = do_fetch_pop3(account.pk)

    assert (again.new, again.deleted, again.error) == (1, 1, "")
    assert server.deleted
    assert Message.objects.get(account=account).parse_problems == []


def test_a_server_that_always_miscounts_still_delivers_with_a_note(alice, mail_user, mail_settings, scripted):
    server = scripted(500, lambda call: body(480))
    account = make_pop_account(alice, mail_user(), server.port, incoming_security="none")

    report = do_fetch_pop3(account.pk)

    assert (report.new, report.error) == (1, "")
    assert server.calls == 2  # one more RETR showed the same bytes: the count is wrong, not the transfer
    assert Message.objects.get(account=account).parse_problems == ["server listed 500 octets but sent 480"]
