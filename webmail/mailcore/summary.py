"""What the cache keeps of a message, from its raw bytes: the parse step of a sync.

Pure Python with no Django, so a sync can run it in a parse process started fresh ("spawn"),
which then holds the parser (and the Celery app the webmail package imports) instead of a copy of
the worker (see webmail/mail/actions/store.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from webmail.mailcore.addresses import Address
from webmail.mailcore.mime import parse_message

SLIM_MIN = 64 * 1024  # messages below this are parsed as they are
SLIM_PART = 8 * 1024  # base64 bodies of non-text parts above this are cut before parsing
SLIM_HEAD = 16 * 1024  # a part header longer than this is left as it is
_PART_TYPE = re.compile(rb"content-type:[ \t]*(?:\r?\n[ \t]+)?(\w+)/", re.IGNORECASE)


# What parsing leaves for a row, as plain values (cheap to send between processes): header date,
# subject, from name, from address, sender, reply-to, to, cc, bcc, Message-ID, In-Reply-To,
# References, snippet, has attachments, parse problems, readable text. See summarize().
Summary = tuple[Any, ...]


def clean(value: str | None, limit: int | None = None) -> str:
    """Return VALUE safe for any database: no NUL, no lone surrogates, at most LIMIT characters."""
    if not value:
        return ""
    text = value.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit] if limit else text


def addresses(items: Sequence[Address]) -> list[list[str]]:
    return [[clean(a.name, 300), clean(a.email, 320)] for a in items[:500]]


def slim_for_parsing(raw: bytes) -> bytes:
    """Return RAW with long base64 bodies of non-text parts cut to their first lines.

    The email package reads every line of a message; attachments are most of the lines of a large
    message and add nothing the cache keeps from parsing (envelope, readable text, snippet, whether
    there are attachments). The stored raw bytes are never changed. A cut attachment can no longer
    report "invalid base64" as a parse problem: the part is served from the raw bytes anyway.

    Only part headers are looked at (each after a line starting "--", up to its blank line): a
    base64 body has no "-" in it, so one find() steps over all of it. Lower-casing the whole
    message instead cost a quarter of the parse thread's time on large mail.
    """
    if len(raw) < SLIM_MIN:
        return raw
    pieces: list[bytes] = []
    pos = 0
    line = raw.find(b"\n--")
    while line >= 0:
        head_start = raw.find(b"\n", line + 1)
        if head_start < 0:
            break
        blank = raw.find(b"\n\r\n", head_start, head_start + SLIM_HEAD)
        blank_lf = raw.find(b"\n\n", head_start, head_start + SLIM_HEAD)
        if blank < 0 and blank_lf < 0:
            line = raw.find(b"\n--", head_start)  # no part header here (or a giant one): go on
            continue
        body = blank_lf + 2 if blank < 0 or 0 <= blank_lf < blank else blank + 3
        end = raw.find(b"\n--", body)
        if end < 0:
            break
        if end - body >= SLIM_PART and _cuttable(raw[line:body].lower()):
            keep = raw.find(b"\n", body + 1, end)  # the first base64 line stays: a valid, short body
            if keep > pos:
                pieces.append(raw[pos : keep + 1])
                pos = end + 1
        line = end
    if not pieces:
        return raw
    pieces.append(raw[pos:])
    return b"".join(pieces)


def _cuttable(head: bytes) -> bool:
    """Whether a (lower-cased) part header says base64 and a type that is not read as text."""
    at = head.find(b"content-transfer-encoding")
    if at < 0 or b"base64" not in head[at : at + 80]:
        return False
    kind = _PART_TYPE.search(head)
    return kind is not None and kind.group(1) not in (b"text", b"message", b"multipart")


def summarize(raw: bytes) -> Summary:
    """Parse RAW (attachments cut first: slim_for_parsing) into the values its row needs, cleaned."""
    parsed = parse_message(slim_for_parsing(raw))
    first = parsed.from_[0] if parsed.from_ else None
    return (
        parsed.date,
        clean(parsed.subject, 2000),
        clean(first.name if first else "", 300),
        clean(first.email if first else "", 320),
        addresses(parsed.sender),
        addresses(parsed.reply_to),
        addresses(parsed.to),
        addresses(parsed.cc),
        addresses(parsed.bcc),
        clean(parsed.message_id, 500),
        clean(parsed.in_reply_to, 500),
        clean(" ".join(parsed.references), 20000),
        clean(parsed.snippet, 300),
        parsed.has_attachments,
        [clean(p, 200) for p in parsed.problems[:20]],
        clean(parsed.text),
    )
