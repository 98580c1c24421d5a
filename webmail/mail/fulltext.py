"""The full-text index, filled from a queue after the sync has stored the messages.

A sync stores each message's readable text in its MessageBody; a trigger (migration 0005) queues
the message id in mail_fts_pending. ``index_pending`` turns queued messages into index entries
(FTS5 on SQLite, a tsvector on PostgreSQL, the documents 0002 defined) in chunks, one transaction
each: a worker killed mid-way leaves the rest queued, and indexing twice is harmless (an entry is
replaced). It runs in the ``sync.index`` task, started when a transaction that stored messages
commits (``request_indexing``), on another sync worker while the sync goes on, and from beat every
minute in case a start was lost. Until a message is indexed it is listed and opened as usual but
not found by search; the search page says how many of a person's messages are still queued.
"""

from __future__ import annotations

import importlib
import logging
import secrets
from collections.abc import Callable, Iterable

from django.core.cache import cache
from django.db import connection, transaction

log = logging.getLogger(__name__)

CHUNK = 500  # messages per indexing transaction (on SQLite, how long a sync may wait for the lock)
QUEUED_FLAG = "fulltext:queued"  # set while an indexing task is queued or running
QUEUED_TTL = 300  # ... at most this long, should that task die without clearing it
RUNNING_LOCK = "fulltext:running"  # held by the one indexer at work (a task from a commit or beat)
RUNNING_TTL = 120  # seconds; renewed after every chunk, so a killed indexer frees it soon

_schema = importlib.import_module("webmail.mail.migrations.0002_message_fulltext")
_SQLITE_INSERT = (
    "INSERT INTO mail_message_fts(rowid, subject, sender, recipients, body) "
    "SELECT m.id, m.subject, m.from_name || ' ' || m.from_email, "
    "m.\"to\" || ' ' || m.cc || ' ' || m.bcc, b.text "
    "FROM mail_message m JOIN mail_messagebody b ON b.message_id = m.id WHERE m.id IN ({ids})"
)
# The document SQL comes from the migration; values are bound.
_PG_UPSERT = (
    "INSERT INTO mail_message_fts (message_id, document) SELECT m.id, "  # noqa: S608
    + _schema.PG_DOCUMENT.format(text="b.text")
    + " FROM mail_message m JOIN mail_messagebody b ON b.message_id = m.id WHERE m.id = ANY(%s) "
    "ON CONFLICT (message_id) DO UPDATE SET document = EXCLUDED.document"
)


def index_chunk(limit: int = CHUNK) -> tuple[int, int]:
    """Index up to LIMIT queued messages (oldest first) in one transaction.

    Returns (queue rows taken, messages indexed): a queued id whose message is gone is only dropped.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Two indexers (two sync workers) take different rows instead of waiting for each other.
            cursor.execute(
                "SELECT message_id FROM mail_fts_pending ORDER BY message_id LIMIT %s FOR UPDATE SKIP LOCKED",
                [limit],
            )
            ids = [row[0] for row in cursor.fetchall()]
            indexed = 0
            if ids:
                cursor.execute(_PG_UPSERT, [ids])
                indexed = cursor.rowcount
                cursor.execute("DELETE FROM mail_fts_pending WHERE message_id = ANY(%s)", [ids])
            return len(ids), max(0, indexed)
        cursor.execute("SELECT message_id FROM mail_fts_pending ORDER BY message_id LIMIT %s", [limit])
        ids = [row[0] for row in cursor.fetchall()]
        indexed = 0
        if ids:
            marks = ", ".join(["%s"] * len(ids))
            cursor.execute(f"DELETE FROM mail_message_fts WHERE rowid IN ({marks})", ids)  # noqa: S608
            cursor.execute(_SQLITE_INSERT.format(ids=marks), ids)
            indexed = cursor.rowcount
            cursor.execute(f"DELETE FROM mail_fts_pending WHERE message_id IN ({marks})", ids)  # noqa: S608
        return len(ids), max(0, indexed)


def index_pending(max_messages: int | None = None, *, between: Callable[[], object] | None = None) -> int:
    """Index the queue until it is empty (or MAX_MESSAGES were taken); return how many were indexed.

    BETWEEN is called after each chunk (the task renews its lock there)."""
    taken = indexed = 0
    while max_messages is None or taken < max_messages:
        step = CHUNK if max_messages is None else min(CHUNK, max_messages - taken)
        took, done = index_chunk(step)
        taken, indexed = taken + took, indexed + done
        if between is not None:
            between()
        if took < step:
            break
    return indexed


def pending_count(account_ids: Iterable[int]) -> int:
    """How many of these accounts' messages wait to be indexed (0 almost always)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM mail_fts_pending LIMIT 1")
        if cursor.fetchone() is None:
            return 0  # the usual case: the account ids (a query, when lazy) are not needed
        ids = list(account_ids)
        if not ids:
            return 0
        marks = ", ".join(["%s"] * len(ids))
        cursor.execute(
            "SELECT count(*) FROM mail_fts_pending p JOIN mail_message m ON m.id = p.message_id "  # noqa: S608
            f"WHERE m.account_id IN ({marks})",
            ids,
        )
        return cursor.fetchone()[0]


def pending_total() -> int:
    """How many messages (of everyone) wait to be indexed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM mail_fts_pending")
        return cursor.fetchone()[0]


def request_indexing() -> None:
    """Start an indexing task when the current transaction commits (at once outside one).

    Many stores ask; one task is queued at a time (a flag in Redis). Without Redis the task is
    queued anyway; should queuing fail, beat's run within a minute indexes the queue.
    """
    transaction.on_commit(_start_task)


def _start_task() -> None:
    try:
        if not cache.add(QUEUED_FLAG, 1, timeout=QUEUED_TTL):
            return  # one is queued or running; it looks at the queue again after clearing the flag
    except Exception:  # Redis away: queue one more task rather than none
        log.warning("cannot reach the cache for the indexing flag", exc_info=True)
    from webmail.mail.tasks import index_fulltext

    try:
        index_fulltext.delay()
    except Exception:
        log.warning("cannot queue full-text indexing; beat will start it", exc_info=True)
        try:
            cache.delete(QUEUED_FLAG)
        except Exception:
            log.debug("cannot clear the indexing flag", exc_info=True)


def run_indexing() -> int | None:
    """The task's body: index until the queue is empty, clear the flag, and look once more.

    One indexer at a time (RUNNING_LOCK): a second one (beat's, or a start that found a run
    under way) returns None at once, since the one at work clears the flag and looks again before
    it stops; the task then tries again a little later, for mail stored after that last look. A store that commits while this runs finds the flag set and starts nothing; it
    committed before the flag was cleared, so the last look finds its messages. Without Redis
    the lock cannot be taken: indexing goes ahead (two indexers only wait on each other).
    """
    token = secrets.token_hex(8)
    try:
        if not cache.add(RUNNING_LOCK, token, timeout=RUNNING_TTL):
            return None
    except Exception:
        log.warning("cannot reach the cache for the indexing lock", exc_info=True)
        token = ""

    def renew() -> None:
        if token:
            try:
                cache.touch(RUNNING_LOCK, RUNNING_TTL)
            except Exception:
                log.debug("cannot renew the indexing lock", exc_info=True)

    try:
        done = index_pending(between=renew)
        try:
            cache.delete(QUEUED_FLAG)
        except Exception:
            log.debug("cannot clear the indexing flag", exc_info=True)
        return done + index_pending(between=renew)
    finally:
        if token:
            try:
                if cache.get(RUNNING_LOCK) == token:
                    cache.delete(RUNNING_LOCK)
            except Exception:
                log.debug("cannot release the indexing lock", exc_info=True)
