"""Fixtures for mailcore tests: endpoints on the real mail stack and a guard that allows loopback.

The stack fixtures (mailstack, mail_user) come from tests.mailstack.fixtures, loaded in tests/conftest.py.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from webmail.mailcore.netguard import NetGuard
from webmail.mailcore.types import Endpoint, TLSConfig

# Services and the stack port for each security: implicit TLS has its own port (RFC 8314 3.3).
_PORTS = {
    ("imap", "tls"): "imaps",
    ("imap", "starttls"): "imap",
    ("imap", "none"): "imap",
    ("pop3", "tls"): "pop3s",
    ("pop3", "starttls"): "pop3",
    ("pop3", "none"): "pop3",
    ("smtp", "tls"): "smtps",
    ("smtp", "starttls"): "submission",
    ("smtp", "none"): "submission",
}


@pytest.fixture
def stack_tls(mailstack) -> TLSConfig:
    """Trust exactly the stack's self-signed certificate."""
    return TLSConfig(ca_file=mailstack.ca_file)


@pytest.fixture(scope="session")
def loopback_guard() -> NetGuard:
    """A guard that lets tests reach servers on 127.0.0.0/8, as an operator's allow-list would."""
    return NetGuard(allowed_networks=["127.0.0.0/8"])


@pytest.fixture
def user(mail_user):
    """A fresh mailbox on the stack."""
    return mail_user()


@pytest.fixture
def endpoint(mailstack) -> Callable[..., Endpoint]:
    """Build an Endpoint for a stack user: endpoint(user, "imap"|"pop3"|"smtp", security, **overrides)."""

    def make(user, service: str, security: str = "tls", **overrides) -> Endpoint:
        fields = {
            "host": mailstack.host,
            "port": mailstack.ports[_PORTS[service, security]],
            "security": security,
            "username": user.address,
            "password": user.password,
            "timeout": 10.0,
        }
        fields.update(overrides)
        return Endpoint(**fields)

    return make


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections (kernel backlog) but never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def free_port() -> int:
    """Return a loopback port that nothing listens on (for now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    return free_port()


class LineServer:
    """A tiny scripted TCP server for faults a real server will not produce.

    `greeting` is sent on connect; `respond(line) -> bytes | None` answers each line (None closes).
    """

    def __init__(self, greeting: bytes, respond: Callable[[bytes], bytes | None]) -> None:
        self.greeting, self.respond = greeting, respond
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.lines: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as f:
            conn.sendall(self.greeting)
            for line in f:
                self.lines.append(line)
                answer = self.respond(line)
                if answer is None:
                    return
                conn.sendall(answer)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def line_server() -> Iterator[Callable[[bytes, Callable[[bytes], bytes | None]], LineServer]]:
    servers: list[LineServer] = []

    def make(greeting: bytes, respond: Callable[[bytes], bytes | None]) -> LineServer:
        servers.append(LineServer(greeting, respond))
        return servers[-1]

    yield make
    for s in servers:
        s.close()
