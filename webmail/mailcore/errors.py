"""The small error vocabulary every mail protocol operation raises."""

from __future__ import annotations

from typing import Literal, get_args

ErrorKind = Literal[
    "unknown_host",  # the name does not resolve
    "refused",  # nothing listens on the port
    "timeout",  # no connection or no answer in time
    "tls",  # handshake failed or the certificate does not verify for the host
    "auth",  # the server refused the credentials
    "capability",  # the server lacks something required (IMAP4rev1, STARTTLS, AUTH, ...)
    "protocol",  # the server said something unexpected or refused a command
    "blocked_address",  # the host resolves to an address the product must not connect to
    "network",  # any other network failure (reset, unreachable, closed)
    "temporary",  # SMTP 4xx: try again later (RFC 5321 4.2.1)
    "permanent",  # SMTP 5xx: do not retry (RFC 5321 4.2.1)
]
KINDS: frozenset[str] = frozenset(get_args(ErrorKind))


class MailError(Exception):
    """A failure talking to a mail server, classified by `kind`.

    The message is for people: it names the host and port and never contains a password.
    """

    def __init__(self, kind: ErrorKind, message: str, *, host: str | None = None, port: int | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown MailError kind {kind!r}")
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.host = host
        self.port = port

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind!r}, {self.message!r})"


class SmtpReplyError(MailError):
    """An SMTP server refused the transaction with a reply code (RFC 5321 4.2)."""

    def __init__(
        self,
        code: int,
        reply: str,
        message: str,
        *,
        host: str | None = None,
        port: int | None = None,
        refused: dict[str, tuple[int, str]] | None = None,
    ):
        kind: ErrorKind = "temporary" if 400 <= code < 500 else "permanent"
        super().__init__(kind, message, host=host, port=port)
        self.code = code
        self.reply = reply
        self.refused = dict(refused or {})

    @property
    def temporary(self) -> bool:
        return self.kind == "temporary"
