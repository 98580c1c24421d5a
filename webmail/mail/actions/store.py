"""Turn fetched raw messages into cache rows: parse, thread, and store in bulk."""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.db.models import Count, Model, Q

from webmail.mail import blobs, fulltext
from webmail.mail.conversations import Threadable, assign_threads
from webmail.mail.models import Folder, Message, MessageBody
from webmail.mailcore.summary import Summary, clean, summarize

log = logging.getLogger(__name__)

# zstd releases the GIL: raw bytes are compressed in threads while other threads parse and store.
_PACKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="blob-pack")
# One thread: jobs finish in the order they were started, and only one of them holds the GIL.
_PARSERS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse-ahead")
INSERT_ROWS = 200  # rows per INSERT statement at most (MessageBody: about 4 MB of packed mail)
# Fields whose values need the database's adaptation; the others are stored as they are.
_PREPARED_FIELDS = (models.JSONField, models.DateTimeField, models.BinaryField)
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


def parse_processes() -> int:
    """Worker processes that parse messages besides the caller (0: parse in a thread of the caller).

    WEBMAIL_SYNC_PARSE_PROCESSES, or by default 1 where there are two cores or more.
    """
    value = getattr(settings, "WEBMAIL_SYNC_PARSE_PROCESSES", None)
    if value is None:
        return 1 if (os.cpu_count() or 1) >= 2 else 0
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


_POOL: dict[str, Any] = {}
_POOL_LOCK = threading.RLock()  # jobs start in fetching threads
YIELD_EVERY = 4  # messages parsed between offers of the GIL (see _prepare_all)
POOL_MIN = 16  # batches smaller than this are parsed here: shipping them costs more than it saves


def _parse_pool(size: int) -> Any | None:
    """Return this process's parse pool of SIZE workers, started on first use; None if it cannot start.

    billiard (Celery's fork of multiprocessing) can start children from a daemonic process, which
    a Celery prefork worker is; the standard library refuses. The pool lives as long as the process
    (starting it costs about half a second, once).
    """
    pool = _POOL.get("pool")
    if pool is not None and _POOL.get("size") == size and _POOL.get("pid") == os.getpid():
        return pool
    _close_pool()
    pool = None
    try:
        import billiard

        # "spawn": a fresh interpreter (about 40 MB: the parser, and the Celery app that importing
        # the webmail package loads; no models), not a fork of the worker, whose pages would be
        # copied one by one as either process touches them.
        pool = billiard.get_context("spawn").Pool(processes=size, maxtasksperchild=5000)
        # Published only once a child answers: until then (about 0.4 s of interpreter start-up)
        # batches are parsed in the thread instead of waiting in the pool's queue.
        pool.apply_async(len, (b"",)).get(timeout=60)
    except Exception:  # no billiard, no process, resource limits: parse in-process
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.terminate()
        log.warning("cannot start %s parse processes; parsing in the sync thread", size, exc_info=True)
        _POOL.update(pool=None, size=size, pid=os.getpid(), failed=True)
        return None
    _POOL.update(pool=pool, size=size, pid=os.getpid(), failed=False)
    return pool


def _usable_pool(size: int) -> Any | None:
    """This process's pool of SIZE parse processes, if it is running (None while it starts)."""
    pool = _POOL.get("pool")
    if pool is not None and _POOL.get("size") == size and _POOL.get("pid") == os.getpid():
        return pool
    return None


_STARTER: dict[str, Any] = {}


def start_parse_pool(*, wait: bool = False) -> None:
    """Start this process's parse pool in the background, if parsing in processes is on and it is
    not running: a spawned interpreter takes about half a second to start, during which batches are
    parsed in the parse thread instead of waiting. WAIT: return once it is up (tests)."""
    size = parse_processes()
    if not size or (_POOL.get("failed") and _POOL.get("size") == size) or _usable_pool(size):
        return
    with _POOL_LOCK:
        starter = _STARTER.get("thread")
        if starter is None or not starter.is_alive() or _STARTER.get("pid") != os.getpid():
            starter = threading.Thread(target=_start_pool, args=(size,), name="parse-pool-start", daemon=True)
            _STARTER.update(thread=starter, pid=os.getpid())
            starter.start()
    if wait:
        starter.join(timeout=120)


def _start_pool(size: int) -> None:
    with _POOL_LOCK:
        if _usable_pool(size) is None:
            _parse_pool(size)


def _close_pool() -> None:
    pool = _POOL.pop("pool", None)
    if pool is not None and _POOL.get("pid") == os.getpid():
        with contextlib.suppress(Exception):
            pool.terminate()
            pool.join()
        # Its queues' semaphores are released when the pool object is collected; a process that
        # leaves before that makes billiard's tracker warn of "leaked semaphores" at exit.
        del pool
        gc.collect()


def stop_parse_pool() -> None:
    """Stop this process's parse pool, if it has one (a worker process shutting down)."""
    with _POOL_LOCK:
        _close_pool()


atexit.register(_close_pool)


class ParseJob:
    """A batch being parsed, turned into rows and packed while the caller does something else
    (stores the previous batch).

    Parsing is pure Python and holds the GIL, which the fetching thread and the caller's storing
    also need: with WEBMAIL_SYNC_PARSE_PROCESSES (default: 1 on a machine with two cores or more)
    a billiard pool parses in other processes and sends back only the values of the row
    (``summarize``); otherwise one parse thread does it here. Either way the zstd packers (which
    release the GIL) compress the raw bytes meanwhile. Safe to create in any thread.
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
            pool = _usable_pool(size)
            if pool is None:
                start_parse_pool()  # this batch is parsed in the thread; later ones in the pool
            else:
                try:
                    chunk = max(1, min(POOL_CHUNK, len(raws) // size))
                    self._pending = pool.map_async(summarize, raws, chunksize=chunk)  # Django-free
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
            summaries = self._pending.get(timeout=POOL_TIMEOUT)
        except Exception:
            log.warning("parse pool failed; parsing here", exc_info=True)
            with _POOL_LOCK:
                _close_pool()
            return _prepare_all(self._folder, self._items)
        return [_prepare(self._folder, i, s) for i, s in zip(self._items, summaries, strict=True)]

    def packed(self) -> list[bytes]:
        """The raw messages compressed for storage (blobs.pack), in order."""
        return [blob for part in self._packing for blob in part.result()]


Prepared = tuple[Message, str]
POOL_CHUNK = 32  # messages per task sent to a parse process


def _prepare(folder: Folder, item: Incoming, summary: Summary) -> Prepared:
    return build_message(folder, item, summary), summary[15]


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
        out.append(_prepare(folder, item, summarize(item.raw)))
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


_MESSAGE_FIELDS = [f.attname for f in Message._meta.concrete_fields]


def build_message(folder: Folder, item: Incoming, summary: Summary) -> Message:
    """Return the unsaved row for ITEM in FOLDER (no thread yet), from its summary.

    Built from positional values, the way Django loads rows from the database: keyword
    construction (and assigning the folder through its descriptor) cost about four times as
    much, a measurable share of a 10,000-message sync.
    """
    (date, subject, from_name, from_email, sender, reply_to, to, cc, bcc, message_id, in_reply_to,
     references, snippet, has_attachments, problems, _text) = summary  # fmt: skip
    header_date = _sane_date(date)
    internal = _sane_date(item.internal_date) or header_date or datetime.now(UTC)
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
        "subject": subject,
        "from_name": from_name,
        "from_email": from_email,
        "sender": sender,
        "reply_to": reply_to,
        "to": to,
        "cc": cc,
        "bcc": bcc,
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "references": references,
        "snippet": snippet,
        "has_attachments": has_attachments,
        "parse_problems": problems,
        **flag_fields(item.flags),
    }
    row = Message(*[values[name] for name in _MESSAGE_FIELDS])
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
    if rows:
        fulltext.request_indexing()  # the bodies' trigger queued them for the index
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
    prepare = [_preparer(f) if isinstance(f, _PREPARED_FIELDS) else None for f in fields]
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
    if not returning and connection.vendor == "postgresql" and _copy_rows(objs, fields, table, columns):
        if auto is None or with_ids:
            for obj in objs:
                obj._state.adding = False
                obj._state.db = connection.alias
        return
    size = max(1, min(INSERT_ROWS, connection.ops.bulk_batch_size(fields, objs)))
    with connection.cursor() as cursor:
        for start in range(0, len(objs), size):
            chunk = objs[start : start + size]
            params = []
            for obj in chunk:
                for f, prep in zip(fields, prepare, strict=True):
                    value = getattr(obj, f.attname)
                    params.append(prep(value) if prep is not None else value)
            cursor.execute(head + ", ".join([row_sql] * len(chunk)) + returning, params)
            if returning:
                # Rows come back in VALUES order on SQLite and PostgreSQL; bulk_create relies on it too.
                for obj, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                    setattr(obj, auto.attname, pk)
    if auto is None or with_ids:
        for obj in objs:
            obj._state.adding = False
            obj._state.db = connection.alias


# PostgreSQL binary COPY types for the field kinds copied as they are (others: INSERT).
_COPY_TYPES = {
    "BigAutoField": "int8",
    "BigIntegerField": "int8",
    "IntegerField": "int4",
    "PositiveIntegerField": "int4",
    "BooleanField": "bool",
    "BinaryField": "bytea",
    "TextField": "text",
    "CharField": "text",
}


def _copy_rows(objs: Sequence[Model], fields: list[models.Field], table: str, columns: str) -> bool:
    """PostgreSQL: write OBJS with one binary COPY; False (nothing written) if a field's kind is not
    in _COPY_TYPES.

    A multi-row INSERT travels as SQL text: psycopg binds values on the client, so a batch of
    message bodies became megabytes of hex that the server lexed and decoded (a fifth of its time
    in an initial sync). COPY sends the bytes as they are.
    """
    types = []
    for f in fields:
        kind = f.target_field.get_internal_type() if f.is_relation else f.get_internal_type()
        if kind not in _COPY_TYPES:
            return False
        types.append(_COPY_TYPES[kind])
    names = [f.attname for f in fields]
    with connection.cursor() as cursor:
        raw_cursor = cursor.cursor  # psycopg's own cursor, under Django's wrapper
        with raw_cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:  # noqa: S608
            copy.set_types(types)
            for obj in objs:
                copy.write_row([getattr(obj, name) for name in names])
    return True


def _preparer(field: models.Field) -> Callable[[Any], Any]:
    """Return how to turn FIELD's values into database parameters.

    On SQLite, the three kinds a sync writes in bulk are done directly, as Django's SQLite
    operations would (JSON text with the default encoder, datetimes as naive ISO text in the
    connection's time zone, bytes as they are): Django's generic route costs about 10 us a value,
    0.3 s of a 10,000-message sync's storing thread. Anything unusual (and every value on other
    databases) takes Django's route.
    """

    def django(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    if connection.vendor != "sqlite":
        return django
    if isinstance(field, models.JSONField) and field.encoder is None:
        return lambda value: json.dumps(value) if type(value) in (list, dict) else django(value)
    if isinstance(field, models.DateTimeField):

        def naive_in_db_zone(value: Any) -> Any:
            if type(value) is datetime and value.tzinfo is not None:
                return str(value.astimezone(connection.timezone).replace(tzinfo=None))
            return django(value)

        return naive_in_db_zone
    if isinstance(field, models.BinaryField):
        return lambda value: value if type(value) is bytes else django(value)
    return django


def refresh_counts(folder: Folder) -> None:
    """Recompute the folder's total and unread counts from the cache."""
    counts = Message.objects.filter(folder=folder).aggregate(
        total=Count("id"), unread=Count("id", filter=Q(seen=False, deleted=False))
    )
    folder.total_count, folder.unread_count = counts["total"], counts["unread"]
    Folder.objects.filter(pk=folder.pk).update(total_count=counts["total"], unread_count=counts["unread"])
