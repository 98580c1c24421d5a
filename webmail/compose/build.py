"""Build outgoing messages (RFC 5322, MIME) from what a person wrote: a pure function, no Django.

The email package does the encoding: policy SMTP gives CRLF line ends and folds headers at 78
characters; bodies get quoted-printable or base64 so that no line exceeds 998 octets (RFC 5322
2.1.1); display names are RFC 2047 encoded words and attachment names RFC 2231 parameters. Only an
address with a non-ASCII local part switches the whole message to RFC 6532 UTF-8 headers (and the
submission to SMTPUTF8). Bcc never appears in any header: the envelope carries it.
"""

from __future__ import annotations

import email.message
import email.policy
import email.utils
import mimetypes
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address as HeaderAddress

from webmail.mailcore.addresses import Address

__all__ = [
    "AttachmentData",
    "HeaderInjection",
    "OutgoingDraft",
    "build_message",
    "check_header_value",
    "forward_subject",
    "guess_content_type",
    "make_message_id",
    "reply_subject",
]

# RFC 5322 2.2: a header field body may not contain CR or LF except as folding; NUL is never allowed.
_FORBIDDEN_RE = re.compile(r"[\r\n\x00]")
# Prefixes people's clients put before a subject; one "Re:"/"Fwd:" is enough (RFC 5322 3.6.5).
_REPLY_PREFIX_RE = re.compile(r"^\s*(?:(?:re|aw|sv|antw)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_FORWARD_PREFIX_RE = re.compile(r"^\s*(?:(?:fwd?|wg|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)


class HeaderInjection(ValueError):
    """A header field value holds CR, LF or NUL: refused, never passed on."""

    def __init__(self, field_name: str) -> None:
        super().__init__(f"{field_name} cannot contain line breaks or NUL characters.")
        self.field_name = field_name


@dataclass(frozen=True)
class AttachmentData:
    """One file to attach: its name as the person sees it, its MIME type and its bytes."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class OutgoingDraft:
    """Everything a message is built from; addresses are already validated."""

    from_: Address
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    subject: str = ""
    text: str = ""
    html: str | None = None  # already sanitised; sent as multipart/alternative with `text`
    attachments: tuple[AttachmentData, ...] = ()
    forwarded: bytes | None = None  # an original message attached as message/rfc822
    forwarded_name: str = "forwarded.eml"
    message_id: str = ""  # without angle brackets
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    date: datetime | None = None
    extra_headers: tuple[tuple[str, str], ...] = field(default=())
    require_recipient: bool = True  # False for drafts

    @property
    def envelope_recipients(self) -> list[str]:
        """Return the RCPT TO addresses: To, Cc and Bcc, each once, in that order."""
        seen: set[str] = set()
        out: list[str] = []
        for addr in (*self.to, *self.cc, *self.bcc):
            key = addr.email.lower()
            if key not in seen:
                seen.add(key)
                out.append(addr.email)
        return out


def check_header_value(field_name: str, value: str) -> str:
    """Return VALUE, or raise HeaderInjection when it holds CR, LF or NUL."""
    if _FORBIDDEN_RE.search(value or ""):
        raise HeaderInjection(field_name)
    return value


def make_message_id(domain: str) -> str:
    """Return a new globally unique msg-id (RFC 5322 3.6.4) at DOMAIN, without angle brackets."""
    domain = (domain or "").strip().lower() or "localhost"
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = "localhost"
    return f"{secrets.token_hex(16)}@{domain}"


def reply_subject(subject: str) -> str:
    """Return "Re: " + SUBJECT without the prefixes it already had ("Re: Re: x" -> "Re: x")."""
    return "Re: " + _REPLY_PREFIX_RE.sub("", subject or "").strip() if subject else "Re: "


def forward_subject(subject: str) -> str:
    """Return "Fwd: " + SUBJECT with one forward prefix."""
    return "Fwd: " + _FORWARD_PREFIX_RE.sub("", subject or "").strip() if subject else "Fwd: "


def guess_content_type(filename: str, declared: str | None = None) -> str:
    """Return a MIME type for FILENAME: the declared one when it is well-formed, else by extension."""
    if declared and re.fullmatch(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", declared.lower()):
        if declared.lower() != "application/octet-stream":
            return declared.lower()
    guessed, _encoding = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"


def _header_address(addr: Address, field_name: str) -> HeaderAddress:
    check_header_value(field_name, addr.name)
    check_header_value(field_name, addr.email)
    local, _, domain = addr.email.rpartition("@")
    if not local or not domain:
        raise ValueError(f"{field_name}: “{addr.email}” is not a complete address.")
    return HeaderAddress(display_name=addr.name, username=local, domain=domain)


def _needs_utf8(draft: OutgoingDraft) -> bool:
    everyone = (draft.from_, *draft.to, *draft.cc, *draft.bcc, *draft.reply_to)
    return any(not a.email.rpartition("@")[0].isascii() for a in everyone)


def build_message(draft: OutgoingDraft) -> bytes:
    """Return the RFC 5322 bytes (CRLF) of DRAFT.

    Raise HeaderInjection for CR/LF/NUL in any header value and ValueError when the From is
    missing or, unless the draft allows it, when there is neither To nor Bcc.
    """
    if not draft.from_ or not draft.from_.email:
        raise ValueError("A message needs a From address.")
    if draft.require_recipient and not draft.to and not draft.bcc and not draft.cc:
        raise ValueError("Add at least one recipient in To (or in Bcc).")
    check_header_value("Subject", draft.subject)
    for name, value in draft.extra_headers:
        check_header_value(name, value)
    for att in draft.attachments:
        check_header_value("Attachment name", att.filename)
    check_header_value("Message-ID", draft.message_id)
    check_header_value("In-Reply-To", draft.in_reply_to or "")
    for ref in draft.references:
        check_header_value("References", ref)

    policy = email.policy.SMTPUTF8 if _needs_utf8(draft) else email.policy.SMTP
    msg = email.message.EmailMessage(policy=policy)
    msg["From"] = _header_address(draft.from_, "From")
    if draft.to:
        msg["To"] = [_header_address(a, "To") for a in draft.to]
    if draft.cc:
        msg["Cc"] = [_header_address(a, "Cc") for a in draft.cc]
    if draft.reply_to:
        msg["Reply-To"] = [_header_address(a, "Reply-To") for a in draft.reply_to]
    # Validate Bcc like the rest, but never write it (RFC 5322 3.6.3 allows omitting it entirely).
    for a in draft.bcc:
        _header_address(a, "Bcc")
    msg["Subject"] = draft.subject
    msg["Date"] = email.utils.format_datetime(draft.date or email.utils.localtime())
    if draft.message_id:
        msg["Message-ID"] = f"<{draft.message_id}>"
    if draft.in_reply_to:
        msg["In-Reply-To"] = f"<{draft.in_reply_to}>"
    if draft.references:
        msg["References"] = " ".join(f"<{r}>" for r in draft.references)
    for name, value in draft.extra_headers:
        msg[name] = value

    text = _normalise_newlines(draft.text)
    msg.set_content(text, charset="utf-8" if not text.isascii() else "us-ascii")
    if draft.html is not None:
        msg.add_alternative(_normalise_newlines(draft.html), subtype="html")
    for att in draft.attachments:
        maintype, _, subtype = guess_content_type(att.filename, att.content_type).partition("/")
        if maintype in ("message", "multipart"):
            maintype, subtype = "application", "octet-stream"
        # Bytes go out base64 whatever their type, so text files stay byte-exact too.
        msg.add_attachment(att.data, maintype=maintype, subtype=subtype, filename=att.filename)
    if draft.forwarded is not None:
        _attach_message(msg, draft.forwarded, draft.forwarded_name)
    return msg.as_bytes()


def _attach_message(msg: email.message.EmailMessage, raw: bytes, filename: str) -> None:
    """Attach RAW as message/rfc822 (RFC 2046 5.2.1), base64-free: 7bit/8bit only are allowed."""
    inner = email.message_from_bytes(raw, policy=email.policy.SMTP)
    msg.add_attachment(inner, filename=filename)


def _normalise_newlines(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") or not text else text + "\n"
