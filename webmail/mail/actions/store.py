"""Turn fetched raw messages into cache rows: parse, thread, and store in bulk."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.db.models import Count, Model, Q

from webmail.mail import blobs
from webmail.mail.conversations import Threadable, assign_threads
from webmail.mail.models import Folder, Message, MessageBody
from webmail.mailcore.addresses import Address
from webmail.mailcore.mime import ParsedMessage, parse_message

log = logging.getLogger(__name__)

# zstd releases the GIL: raw bytes are compressed in threads while other threads parse and store.
_PACKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="blob-pack")
# One thread: jobs finish in the order they were started, and only one of them holds the GIL.
_PARSERS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse-ahead")
INSERT_ROWS = 200  # rows per INSERT statement at most (MessageBody: about 4 MB of packed mail)
# Fields whose values need the database's adaptation; the others are stored as they are.
_PREPARED_FIELDS = (models.JSONField, models.DateTimeField, models.BinaryField)
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
_POOL_LOCK = threading.RLock()  # jobs start in fetching threads
YIELD_EVERY = 4  # messages parsed between offers of the GIL (see _prepare_all)
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
    """A batch being parsed, turned into rows and packed while the caller does something else
    (stores the previous batch).

    By default one parse thread does the parsing and builds the rows: that is pure Python and
    holds the GIL, but the caller's SQLite writes, the zstd packers and the socket reads release
    it, so on two cores the work on batch k+1 runs beside the storing of batch k. With
    WEBMAIL_SYNC_PARSE_PROCESSES a billiard pool parses instead (rows are then built by rows()).
    Safe to create in any thread.
    """

    def __init__(self, folder: Folder, items: Sequence[Incoming]) -> None:
        self._folder, self._items = folder, items
        raws = [i.raw for i in items]
        half = (len(raws) + 1) // 2
        self._packing = [_PACKERS.submit(_pack_all, raws[:half]), _PACKERS.submit(_pack_all, raws[half:])]
        self._pending: Any = None
        self._future: Future[list[Prepared]] | None = None
        size = parse_processes()
        if size and len(raws) >= POOL_MIN and not (_POOL.get("failed") and _POOL.get("size") == size):
            with _POOL_LOCK:
                pool = _parse_pool(size)
            if pool is not None:
                try:
                    slim = [slim_for_parsing(r) for r in raws]
                    self._pending = pool.map_async(parse_message, slim, chunksize=8)
                except Exception:
                    log.warning("parse pool refused work; parsing here", exc_info=True)
                    with _POOL_LOCK:
                        _close_pool()
        if self._pending is None:
            self._future = _PARSERS.submit(_prepare_all, folder, items)

    def rows(self) -> list[Prepared]:
        """A new Message row (no thread yet) and its readable text per item, in order. A pool that
        fails (a worker killed, a timeout) falls back to parsing here: the result is always complete."""
        if self._future is not None:
            return self._future.result()
        try:
            parsed = self._pending.get(timeout=POOL_TIMEOUT)
        except Exception:
            log.warning("parse pool failed; parsing here", exc_info=True)
            with _POOL_LOCK:
                _close_pool()
            return _prepare_all(self._folder, self._items)
        return [_prepare(self._folder, i, p) for i, p in zip(self._items, parsed, strict=True)]

    def packed(self) -> list[bytes]:
        """The raw messages compressed for storage (blobs.pack), in order."""
        return [blob for part in self._packing for blob in part.result()]


Prepared = tuple[Message, str]


def _prepare(folder: Folder, item: Incoming, parsed: ParsedMessage) -> Prepared:
    return build_message(folder, item, parsed), clean(parsed.text)


def _pack_all(raws: Sequence[bytes]) -> list[bytes]:
    return [blobs.pack(raw) for raw in raws]


def _prepare_all(folder: Folder, items: Sequence[Incoming]) -> list[Prepared]:
    """Parse ITEMS in order and build their rows, offering the GIL to other threads now and then.

    A thread that steps through SQLite rows (INSERT ... RETURNING) releases the GIL for every row
    and must take it back from this busy loop, which otherwise gives it up only every switch
    interval (5 ms). sleep(0) hands it over at once, but costs a system call (about 0.1 ms under
    load): every YIELD_EVERY messages (under a millisecond of parsing) is the compromise.
    """
    out = []
    for n, item in enumerate(items, 1):
        out.append(_prepare(folder, item, parse_message(slim_for_parsing(item.raw))))
        if n % YIELD_EVERY == 0:
            time.sleep(0)
    return out


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
    """Return the unsaved row for ITEM in FOLDER (no thread yet).

    Built from positional values, the way Django loads rows from the database: keyword
    construction (and assigning the folder through its descriptor) cost about four times as
    much, a measurable share of a 10,000-message sync.
    """
    header_date = _sane_date(parsed.date)
    internal = _sane_date(item.internal_date) or header_date or datetime.now(UTC)
    first_from = parsed.from_[0] if parsed.from_ else None
    values = {
        "id": None,
        "account_id": folder.account_id,
        "folder_id": folder.pk,
        "uid": item.uid,
        "thread_id": None,
        "modseq": item.modseq,
        "internal_date": internal,
        "size": len(item.raw),
        "date": header_date or internal,
        "subject": clean(parsed.subject, 2000),
        "from_name": clean(first_from.name if first_from else "", 300),
        "from_email": clean(first_from.email if first_from else "", 320),
        "sender": addresses(parsed.sender),
        "reply_to": addresses(parsed.reply_to),
        "to": addresses(parsed.to),
        "cc": addresses(parsed.cc),
        "bcc": addresses(parsed.bcc),
        "message_id": clean(parsed.message_id, 500),
        "in_reply_to": clean(parsed.in_reply_to, 500),
        "references": clean(" ".join(parsed.references), 20000),
        "snippet": clean(parsed.snippet, 300),
        "has_attachments": parsed.has_attachments,
        "parse_problems": [clean(p, 200) for p in parsed.problems[:20]],
        **flag_fields(item.flags),
    }
    row = Message(*[values[f.attname] for f in Message._meta.concrete_fields])
    Message.folder.field.set_cached_value(row, folder)
    return row


def store_messages(
    folder: Folder, items: Sequence[Incoming], parsing: ParseJob | None = None
) -> list[Message]:
    """Store ITEMS in FOLDER (skipping UIDs already cached) and return the new rows.

    PARSING is ParseJob(FOLDER, ITEMS) begun earlier (so it was done meanwhile), else ITEMS are
    parsed here; the UIDs are always those of ITEMS (a POP3 batch gets its UIDs only now). Must
    run inside a transaction; the caller records its progress (Folder.synced_uid) in the same one.
    """
    if not items:
        return []
    present = set(
        Message.objects.filter(folder=folder, uid__in=[i.uid for i in items]).values_list("uid", flat=True)
    )
    keep = [n for n, i in enumerate(items) if i.uid not in present]
    if parsing is None:
        parsing = ParseJob(folder, items)
    prepared = parsing.rows()
    rows = []
    for n in keep:
        row = prepared[n][0]
        row.uid = items[n].uid
        rows.append(row)
    threadables = [
        Threadable(m.message_id, m.in_reply_to, m.references.split(), m.subject, m.date) for m in rows
    ]
    assign_threads(folder.account_id, threadables)
    for row, t in zip(rows, threadables, strict=True):
        row.thread = t.thread
    insert_rows(rows)
    packed = parsing.packed()
    insert_rows(
        [
            MessageBody(message_id=row.pk, raw_compressed=packed[n], text=prepared[n][1])
            for row, n in zip(rows, keep, strict=True)
        ]
    )
    return rows


def insert_rows(objs: Sequence[Model], *, with_ids: bool = True) -> None:
    """INSERT OBJS (new rows of one model) in multi-row statements, like bulk_create, and set their
    auto primary keys (unless WITH_IDS is False: the objects are then left as they were).

    bulk_create spends more time preparing values than the database spends storing them (a
    generic compiler step per value, 30 columns a message), and asks for primary keys back even
    when they are known, which SQLite hands over one row per step, releasing and retaking the GIL
    for each: slow beside busy parse and fetch threads. Here only JSON, date and binary values go
    through their field's preparation; a key is asked for only when the database assigns it.
    """
    if not objs:
        return
    meta = type(objs[0])._meta
    auto = meta.auto_field if objs[0].pk is None else None  # the database assigns the keys
    fields = [f for f in meta.local_concrete_fields if f is not auto]
    prepare = [isinstance(f, _PREPARED_FIELDS) for f in fields]
    quote = connection.ops.quote_name
    table, columns = quote(meta.db_table), ", ".join(quote(f.column) for f in fields)
    head = f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608 - names from the model, values bound
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    returning = ""
    if auto is not None and with_ids:
        if not connection.features.can_return_rows_from_bulk_insert:
            type(objs[0])._default_manager.bulk_create(objs)  # SQLite before 3.35
            return
        returning = " RETURNING " + quote(auto.column)
    size = max(1, min(INSERT_ROWS, connection.ops.bulk_batch_size(fields, objs)))
    with connection.cursor() as cursor:
        for start in range(0, len(objs), size):
            chunk = objs[start : start + size]
            params = []
            for obj in chunk:
                for f, prep in zip(fields, prepare, strict=True):
                    value = getattr(obj, f.attname)
                    params.append(f.get_db_prep_save(value, connection) if prep else value)
            cursor.execute(head + ", ".join([row_sql] * len(chunk)) + returning, params)
            if returning:
                # Rows come back in VALUES order on SQLite and PostgreSQL; bulk_create relies on it too.
                for obj, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                    setattr(obj, auto.attname, pk)
    if auto is None or with_ids:
        for obj in objs:
            obj._state.adding = False
            obj._state.db = connection.alias


def refresh_counts(folder: Folder) -> None:
    """Recompute the folder's total and unread counts from the cache."""
    counts = Message.objects.filter(folder=folder).aggregate(
        total=Count("id"), unread=Count("id", filter=Q(seen=False, deleted=False))
    )
    folder.total_count, folder.unread_count = counts["total"], counts["unread"]
    Folder.objects.filter(pk=folder.pk).update(total_count=counts["total"], unread_count=counts["unread"])
