"""Assign cached messages to conversations (JWZ-style threading, stored as ThreadKey rows).

A message joins the thread of any Message-ID it names (its own, In-Reply-To, References). When
those ids lead to several threads, the threads are merged. A reply that names nothing known joins
a recent thread with the same normalised subject. Everything else starts a thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from webmail.mail.models import Message, Thread, ThreadKey
from webmail.mailcore.threads import normalize_subject

SUBJECT_WINDOW = timedelta(days=30)
MAX_KEYS = 60  # the newest references are enough to find a thread; caps work on giant headers


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
        return list(dict.fromkeys(i for i in ids if i))

    def is_reply(self) -> bool:
        return (
            bool(self.in_reply_to or self.references)
            or normalize_subject(self.subject) != self.subject.strip()
        )


def assign_threads(account_id: int, items: Iterable[Threadable]) -> None:
    """Set item.thread for every item (in order, so items in one batch can thread with each other).

    Must run inside the transaction that stores the messages.
    """
    items = list(items)
    wanted = {key for item in items for key in item.keys()}
    known: dict[str, int] = (
        dict(
            ThreadKey.objects.filter(account_id=account_id, message_id__in=wanted).values_list(
                "message_id", "thread_id"
            )
        )
        if wanted
        else {}
    )
    threads: dict[int, Thread] = {t.pk: t for t in Thread.objects.filter(pk__in=set(known.values()))}
    new_keys: dict[str, int] = {}
    redirect: dict[int, Thread] = {}
    for item in items:
        keys = item.keys()
        found = sorted({known[k] for k in keys if k in known})
        if found:
            target = threads[found[0]]
            if len(found) > 1:
                _merge(account_id, target, [threads[t] for t in found[1:]], known, new_keys, threads)
                redirect.update({t: target for t in found[1:]})
        else:
            target = _by_subject(account_id, item) if item.is_reply() else None
            if target is None:
                target = Thread.objects.create(
                    account_id=account_id, subject=normalize_subject(item.subject)[:500], last_date=item.date
                )
            threads[target.pk] = target
        if item.date > target.last_date:
            target.last_date = item.date
            Thread.objects.filter(pk=target.pk).update(last_date=item.date)
        for key in keys:
            if key not in known:
                new_keys[key] = target.pk
            known[key] = target.pk
        item.thread = target
    # A later item may have merged the thread an earlier item was given.
    for item in items:
        while item.thread.pk in redirect:
            item.thread = redirect[item.thread.pk]
    if new_keys:
        ThreadKey.objects.bulk_create(
            [ThreadKey(account_id=account_id, message_id=k[:500], thread_id=t) for k, t in new_keys.items()],
            ignore_conflicts=True,
        )


def _by_subject(account_id: int, item: Threadable) -> Thread | None:
    subject = normalize_subject(item.subject)[:500]
    if not subject:
        return None
    return (
        Thread.objects.filter(
            account_id=account_id, subject=subject, last_date__gte=item.date - SUBJECT_WINDOW
        )
        .order_by("-last_date")
        .first()
    )


def _merge(
    account_id: int,
    target: Thread,
    others: list[Thread],
    known: dict[str, int],
    new_keys: dict[str, int],
    threads: dict[int, Thread],
) -> None:
    """Move every message and key of OTHERS into TARGET, then delete OTHERS."""
    ids = [t.pk for t in others]
    Message.objects.filter(thread_id__in=ids).update(thread=target)
    ThreadKey.objects.filter(account_id=account_id, thread_id__in=ids).update(thread=target)
    last = max([target.last_date, *(t.last_date for t in others)])
    if last != target.last_date:
        target.last_date = last
        Thread.objects.filter(pk=target.pk).update(last_date=last)
    Thread.objects.filter(pk__in=ids).delete()
    for mapping in (known, new_keys):
        for key, thread_id in mapping.items():
            if thread_id in ids:
                mapping[key] = target.pk
    for pk in ids:
        threads.pop(pk, None)
