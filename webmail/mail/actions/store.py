"""Turn fetched raw messages into cache rows: parse, thread, and store in bulk."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q

from webmail.mail import blobs
from webmail.mail.conversations import Threadable, assign_threads
from webmail.mail.models import Folder, Message, MessageBody
from webmail.mailcore.addresses import Address
from webmail.mailcore.mime import ParsedMessage, parse_message

log = logging.getLogger(__name__)

# zlib releases the GIL: raw bytes are compressed in threads while the main thread parses.
_PACKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="blob-pack")
SLIM_MIN = 64 * 1024  # messages below this are parsed as they are
SLIM_PART = 8 * 1024  # base64 bodies of non-text parts above this are cut before parsing
_PART_TYPE = re.compile(rb"content-type:[ \t]*(?:\r?\n[ \t]+)?(\w+)/", re.IGNORECASE)
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
SYSTEM_FLAGS = {"\\seen", "\\flagged", "\\answered", "\\draft", "\\deleted", "\\recent"}


@dataclass(frozen=True)
class Incoming:
    """A message to store: its raw bytes and what the server says about it."""

    uid: int
    raw: bytes
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None
    modseq: int | None = None


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


def flag_fields(flags: Sequence[str]) -> dict[str, object]:
    """Return the Message fields for an IMAP flag list (system flags as booleans, the rest keywords)."""
    lowered = {f.lower() for f in flags}
    return {
        "seen": "\\seen" in lowered,
        "flagged": "\\flagged" in lowered,
        "answered": "\\answered" in lowered,
        "draft": "\\draft" in lowered,
        "deleted": "\\deleted" in lowered,
        "keywords": sorted({clean(f, 100) for f in flags if f.lower() not in SYSTEM_FLAGS}),
    }


def slim_for_parsing(raw: bytes) -> bytes:
    """Return RAW with long base64 bodies of non-text parts cut to their first lines.

    The email package reads every line of a message; attachments are most of the lines of a large
    message and add nothing the cache keeps from parsing (envelope, readable text, snippet, whether
    there are attachments). The stored raw bytes are never changed. A cut attachment can no longer
    report "invalid base64" as a parse problem: the part is served from the raw bytes anyway.
    """
    if len(raw) < SLIM_MIN:
        return raw
    lower = raw.lower()
    pieces: list[bytes] = []
    pos = search = 0
    while True:
        at = lower.find(b"content-transfer-encoding", search)
        if at < 0:
            break
        search = at + 25
        start = lower.rfind(b"\n--", 0, at)
        blank = lower.find(b"\n\r\n", at)
        blank_lf = lower.find(b"\n\n", at)
        if start < 0 or (blank < 0 and blank_lf < 0):
            continue
        if blank < 0 or (0 <= blank_lf < blank):
            body = blank_lf + 2
        else:
            body = blank + 3
        head = lower[start:body]
        end = lower.find(b"\n--", body)
        if end < 0 or end - body < SLIM_PART or b"base64" not in head[at - start : at - start + 80]:
            continue
        kind = _PART_TYPE.search(head)
        if kind is None or kind.group(1) in (b"text", b"message", b"multipart"):
            continue  # readable text (or no type: text/plain by default) is parsed in full
        keep = lower.find(b"\n", body + 1, end)  # the first base64 line stays: a valid, short body
        if keep < 0 or keep <= pos:
            continue
        pieces.append(raw[pos : keep + 1])
        pos = end + 1
        search = end
    if not pieces:
        return raw
    pieces.append(raw[pos:])
    return b"".join(pieces)


def parse_processes() -> int:
    """Worker processes that parse messages besides the caller (0: parse in the calling thread)."""
    try:
        return max(0, int(getattr(settings, "WEBMAIL_SYNC_PARSE_PROCESSES", 0) or 0))
    except (TypeError, ValueError):
        return 0


_POOL: dict[str, Any] = {}
POOL_MIN = 16  # batches smaller than this are parsed here: shipping them costs more than it saves


def _parse_pool(size: int) -> Any | None:
    """Return this process's parse pool of SIZE workers, started on first use; None if it cannot start.

    billiard (Celery's fork of multiprocessing) can start children from a daemonic process, which
    a Celery prefork worker is; the standard library refuses. The pool lives as long as the process.
    """
    pool = _POOL.get("pool")
    if pool is not None and _POOL.get("size") == size and _POOL.get("pid") == os.getpid():
        return pool
    _close_pool()
    try:
        import billiard

        pool = billiard.Pool(processes=size, maxtasksperchild=2000)
    except Exception:  # no billiard, no fork, resource limits: parse in-process
        log.warning("cannot start %s parse processes; parsing in the sync thread", size, exc_info=True)
        _POOL.update(pool=None, size=size, pid=os.getpid(), failed=True)
        return None
    _POOL.update(pool=pool, size=size, pid=os.getpid(), failed=False)
    return pool


def _close_pool() -> None:
    pool = _POOL.pop("pool", None)
    if pool is not None and _POOL.get("pid") == os.getpid():
        with contextlib.suppress(Exception):
            pool.terminate()


atexit.register(_close_pool)


class ParseJob:
    """Messages being parsed, maybe in the pool while the caller stores the previous batch."""

    def __init__(self, raws: Sequence[bytes]) -> None:
        self._raws = raws
        self._pending: Any = None
        size = parse_processes()
        if size and len(raws) >= POOL_MIN and not (_POOL.get("failed") and _POOL.get("size") == size):
            pool = _parse_pool(size)
            if pool is not None:
                try:
                    self._pending = pool.map_async(parse_message, list(raws), chunksize=8)
                except Exception:
                    log.warning("parse pool refused work; parsing here", exc_info=True)
                    _close_pool()

    def get(self) -> list[ParsedMessage]:
        """The parsed messages, in order. A pool that fails (a worker killed, a timeout) falls back
        to parsing here: the result is always complete."""
        if self._pending is not None:
            try:
                return list(self._pending.get(timeout=POOL_TIMEOUT))
            except Exception:
                log.warning("parse pool failed; parsing here", exc_info=True)
                _close_pool()
        return [parse_message(r) for r in self._raws]


def start_parsing(items: Sequence[Incoming]) -> ParseJob:
    """Begin parsing ITEMS (attachments cut first); in WEBMAIL_SYNC_PARSE_PROCESSES workers if set."""
    return ParseJob([slim_for_parsing(i.raw) for i in items])


POOL_TIMEOUT = 300.0


def _sane_date(value: datetime | None) -> datetime | None:
    """Return VALUE when it can be stored and sorted on (aware, 1970-2200), else None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value if EARLIEST <= value <= LATEST else None
    except (OverflowError, ValueError):
        return None


def build_message(folder: Folder, item: Incoming, parsed: ParsedMessage) -> Message:
    header_date = _sane_date(parsed.date)
    internal = _sane_date(item.internal_date) or header_date or datetime.now(UTC)
    first_from = parsed.from_[0] if parsed.from_ else None
    return Message(
        account_id=folder.account_id,
        folder=folder,
        uid=item.uid,
        modseq=item.modseq,
        internal_date=internal,
        size=len(item.raw),
        date=header_date or internal,
        subject=clean(parsed.subject, 2000),
        from_name=clean(first_from.name if first_from else "", 300),
        from_email=clean(first_from.email if first_from else "", 320),
        sender=addresses(parsed.sender),
        reply_to=addresses(parsed.reply_to),
        to=addresses(parsed.to),
        cc=addresses(parsed.cc),
        bcc=addresses(parsed.bcc),
        message_id=clean(parsed.message_id, 500),
        in_reply_to=clean(parsed.in_reply_to, 500),
        references=clean(" ".join(parsed.references), 20000),
        snippet=clean(parsed.snippet, 300),
        has_attachments=parsed.has_attachments,
        parse_problems=[clean(p, 200) for p in parsed.problems[:20]],
        **flag_fields(item.flags),
    )


def store_messages(
    folder: Folder, items: Sequence[Incoming], parsing: ParseJob | None = None
) -> list[Message]:
    """Store ITEMS in FOLDER (skipping UIDs already cached) and return the new rows.

    PARSING is start_parsing(ITEMS) begun earlier (so the pool parsed them meanwhile), else they
    are parsed here. Must run inside a transaction; the caller records its progress
    (Folder.synced_uid) in the same one.
    """
    if not items:
        return []
    present = set(
        Message.objects.filter(folder=folder, uid__in=[i.uid for i in items]).values_list("uid", flat=True)
    )
    keep = [n for n, i in enumerate(items) if i.uid not in present]
    todo = [items[n] for n in keep]
    packed = [_PACKERS.submit(blobs.pack, i.raw) for i in todo]
    if parsing is None:
        parsed = start_parsing(todo).get()
    else:
        everything = parsing.get()
        parsed = [everything[n] for n in keep]
    rows = [build_message(folder, item, p) for item, p in zip(todo, parsed, strict=True)]
    threadables = [
        Threadable(m.message_id, m.in_reply_to, m.references.split(), m.subject, m.date) for m in rows
    ]
    assign_threads(folder.account_id, threadables)
    for row, t in zip(rows, threadables, strict=True):
        row.thread = t.thread
    Message.objects.bulk_create(rows, batch_size=500)
    MessageBody.objects.bulk_create(
        [
            MessageBody(message_id=row.pk, raw_compressed=blob.result(), text=clean(p.text))
            for row, blob, p in zip(rows, packed, parsed, strict=True)
        ],
        batch_size=200,
    )
    return rows


def refresh_counts(folder: Folder) -> None:
    """Recompute the folder's total and unread counts from the cache."""
    counts = Message.objects.filter(folder=folder).aggregate(
        total=Count("id"), unread=Count("id", filter=Q(seen=False, deleted=False))
    )
    folder.total_count, folder.unread_count = counts["total"], counts["unread"]
    Folder.objects.filter(pk=folder.pk).update(total_count=counts["total"], unread_count=counts["unread"])
