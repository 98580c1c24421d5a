"""Frozen dataclasses shared by the mail protocol modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Security = Literal["tls", "starttls", "none"]
SECURITIES: tuple[str, ...] = ("tls", "starttls", "none")


@dataclass(frozen=True)
class Endpoint:
    """Where and how to log in to one mail server.

    security: "tls" (implicit TLS, RFC 8314), "starttls" (upgrade after connecting) or "none".
    """

    host: str
    port: int
    security: Security
    username: str
    password: str = field(repr=False)
    timeout: float = 20.0

    def __post_init__(self) -> None:
        if self.security not in SECURITIES:
            raise ValueError(f"security must be one of {SECURITIES}, not {self.security!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")

    @property
    def address(self) -> str:
        """host:port for messages, with IPv6 literals in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class TLSConfig:
    """Which certificate authorities to trust; verification is always on for tls and starttls.

    ca_file None means the system store (production); tests pass the stack's self-signed cert.
    """

    ca_file: str | None = None


@dataclass(frozen=True)
class ProbeResult:
    """A successful login test: what the server offers after authentication."""

    ok: bool
    capabilities: tuple[str, ...]
    detail: str


# -- IMAP


@dataclass(frozen=True)
class Folder:
    """One mailbox from LIST (RFC 3501 7.2.2), with its special use (RFC 6154) if any."""

    name: str
    delimiter: str | None
    flags: tuple[str, ...]
    special_use: str | None  # "\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged"
    subscribed: bool

    @property
    def selectable(self) -> bool:
        return not any(f.lower() in ("\\noselect", "\\nonexistent") for f in self.flags)


@dataclass(frozen=True)
class FlagChange:
    """A message whose flags changed (FETCH with MODSEQ, RFC 7162 3.1.4)."""

    uid: int
    flags: tuple[str, ...]
    modseq: int | None


@dataclass(frozen=True)
class FolderState:
    """What SELECT says about a folder, plus the QRESYNC delta when asked for (RFC 7162 3.2.5)."""

    name: str
    uidvalidity: int
    uidnext: int | None
    exists: int
    highestmodseq: int | None  # None: the server has no CONDSTORE for this folder (NOMODSEQ)
    vanished: tuple[int, ...] = ()
    changed: tuple[FlagChange, ...] = ()
    qresync: bool = False  # True when vanished/changed are a complete QRESYNC delta


@dataclass(frozen=True)
class MessageData:
    """One message from FETCH: metadata and the raw header or full RFC 5322 bytes."""

    uid: int
    flags: tuple[str, ...]
    internaldate: datetime | None
    size: int
    modseq: int | None
    raw: bytes


# -- POP3


@dataclass(frozen=True)
class Pop3Listing:
    """One message in a POP3 maildrop: its session number, size and unique id (RFC 1939 7)."""

    number: int
    size: int
    uid: str


# -- SMTP


@dataclass(frozen=True)
class SubmitResult:
    """Outcome of one SMTP transaction: who was accepted, who refused, and the final reply."""

    accepted: tuple[str, ...]
    refused: dict[str, tuple[int, str]]
    reply: str
