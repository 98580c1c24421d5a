"""Assign cached messages to conversations (JWZ-style threading, stored as ThreadKey rows).

A message joins the thread of any Message-ID it names (its own, In-Reply-To, References). When
those ids lead to several threads, the threads are merged. A reply that names nothing known joins
a recent thread with the same normalised subject. Everything else starts a thread.

A batch costs a fixed number of queries (known keys, candidate threads by subject, one bulk insert
of new threads and one of new keys), plus a few per merge of threads already stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection

from webmail.mail.models import Message, Thread, ThreadKey
from webmail.mailcore.threads import is_reply_subject, normalize_subject

SUBJECT_WINDOW = timedelta(days=30)
MAX_KEYS = 60  # the newest references are enough to find a thread; caps work on giant headers
SUBJECT_LEN = 500


@dataclass
class Threadable:
    """What threading needs of a message about to be stored."""

    message_id: str
    in_reply_to: str
    references: list[str]
    subject: str
    date: datetime
    thread: Thread | None = None

    def keys(self) -> list[str]:
        ids = [*self.references[-MAX_KEYS:], self.in_reply_to, self.message_id]
        return list(dict.fromkeys(i[:500] for i in ids if i))

    def is_reply(self) -> bool:
        return bool(self.in_reply_to or self.references) or is_reply_subject(self.subject)


class _Batch:
    """Threads known to one call: stored ones by pk, new ones in memory until the bulk insert."""

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.by_key: dict[str, Thread] = {}
        self.by_subject: dict[str, list[Thread]] = {}
        self.merged: dict[int, Thread] = {}  # id() of a merged-away thread -> the thread it joined
        self.new: list[Thread] = []
        self.stored: dict[int, Thread] = {}  # one object per stored thread, found by key or subject
        self.dirty: set[int] = set()  # pks of stored threads whose last_date moved
        self.new_keys: dict[str, Thread] = {}

    def resolve(self, thread: Thread) -> Thread:
        while id(thread) in self.merged:
            thread = self.merged[id(thread)]
        return thread

    def remember_subject(self, thread: Thread) -> None:
        if thread.subject:
            self.by_subject.setdefault(thread.subject, []).append(thread)

    def by_subject_near(self, subject: str, date: datetime) -> Thread | None:
        found = [
            t
            for t in (self.resolve(t) for t in self.by_subject.get(subject, ()))
            if t.last_date >= date - SUBJECT_WINDOW
        ]
        return max(found, key=lambda t: t.last_date) if found else None

    def merge(self, target: Thread, others: list[Thread]) -> None:
        """Fold OTHERS into TARGET: stored ones in the database now, new ones in memory."""
        stored = [t.pk for t in others if t.pk is not None]
        if stored:
            Message.objects.filter(thread_id__in=stored).update(thread=target)
            ThreadKey.objects.filter(account_id=self.account_id, thread_id__in=stored).update(thread=target)
            Thread.objects.filter(pk__in=stored).delete()
            self.dirty.difference_update(stored)
        for other in others:
            if other.pk is None:
                self.new.remove(other)
            self.merged[id(other)] = target
            self.touch(target, other.last_date)

    def touch(self, thread: Thread, date: datetime) -> None:
        if date > thread.last_date:
            thread.last_date = date
            if thread.pk is not None:
                self.dirty.add(thread.pk)


def assign_threads(account_id: int, items: Iterable[Threadable]) -> None:
    """Set item.thread for every item (in order, so items in one batch can thread with each other).

    Must run inside the transaction that stores the messages; new threads are saved on return.
    """
    items = list(items)
    batch = _Batch(account_id)
    wanted = {key for item in items for key in item.keys()}
    if wanted:
        rows = ThreadKey.objects.filter(account_id=account_id, message_id__in=wanted).values_list(
            "message_id", "thread_id"
        )
        key_thread = dict(rows)
        batch.stored = {t.pk: t for t in Thread.objects.filter(pk__in=set(key_thread.values()))}
        batch.by_key = {k: batch.stored[t] for k, t in key_thread.items()}
    subjects = {normalize_subject(i.subject)[:SUBJECT_LEN] for i in items if i.is_reply()} - {""}
    if subjects:
        earliest = min(i.date for i in items) - SUBJECT_WINDOW
        for t in Thread.objects.filter(account_id=account_id, subject__in=subjects, last_date__gte=earliest):
            batch.remember_subject(batch.stored.setdefault(t.pk, t))

    for item in items:
        keys = item.keys()
        linked = (batch.resolve(batch.by_key[k]) for k in keys if k in batch.by_key)
        found = list({id(t): t for t in linked}.values())
        subject = normalize_subject(item.subject)[:SUBJECT_LEN]
        if found:
            # Prefer a stored thread (the oldest) as the survivor: fewer rows to move.
            found.sort(key=lambda t: (t.pk is None, t.pk or 0))
            target = found[0]
            if len(found) > 1:
                batch.merge(target, found[1:])
        else:
            target = batch.by_subject_near(subject, item.date) if item.is_reply() else None
            if target is None:
                target = Thread(account_id=account_id, subject=subject, last_date=item.date)
                batch.new.append(target)
                batch.remember_subject(target)
        batch.touch(target, item.date)
        for key in keys:
            if key not in batch.by_key:
                batch.new_keys[key] = target
            batch.by_key[key] = target
        item.thread = target

    from webmail.mail.actions.store import insert_rows  # store imports this module

    if batch.new:
        insert_rows(batch.new)
    if batch.dirty:
        Thread.objects.bulk_update([batch.stored[pk] for pk in batch.dirty], ["last_date"], batch_size=500)
    for item in items:
        item.thread = batch.resolve(item.thread)  # type: ignore[arg-type]
    if batch.new_keys:
        _insert_keys(account_id, [(k, batch.resolve(t).pk) for k, t in batch.new_keys.items()])


KEY_ROWS = 300  # rows per INSERT (3 parameters each: within SQLite's and PostgreSQL's limits)


def _insert_keys(account_id: int, pairs: list[tuple[str, int]]) -> None:
    """Insert (Message-ID, thread id) keys for ACCOUNT_ID, skipping any already there.

    One multi-row INSERT ... ON CONFLICT DO NOTHING per KEY_ROWS (SQLite 3.24+ and PostgreSQL):
    bulk_create built a model instance per key first, a tenth of an initial sync's storing thread.
    """
    table = connection.ops.quote_name(ThreadKey._meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(pairs), KEY_ROWS):
            chunk = pairs[start : start + KEY_ROWS]
            values = ", ".join(["(%s, %s, %s)"] * len(chunk))
            params = [v for key, thread_id in chunk for v in (account_id, key, thread_id)]
            cursor.execute(
                f"INSERT INTO {table} (account_id, message_id, thread_id) VALUES {values} "  # noqa: S608
                "ON CONFLICT (account_id, message_id) DO NOTHING",
                params,
            )
