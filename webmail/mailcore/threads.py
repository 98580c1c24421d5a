"""Conversation threading: subject keys, reference candidates and the threading algorithm.

The algorithm (a database-friendly simplification of JWZ threading,
https://www.jwz.org/doc/threading.html, and RFC 5256 REFERENCES) that the cache layer
runs for each new message, and that ``Threader`` runs in memory:

1. ``ids = thread_candidates(message_id, in_reply_to, references)``: the referenced
   message-ids root first, then the message's own id.
2. Look up every thread that already knows any of ``ids`` (as a message's own id or as
   an id some message referenced). An index on (account, message_id) over a table of
   "known ids" rows (id, thread) makes this one query.
3. None found, and the message is a reply (it has In-Reply-To/References, or its
   subject has a reply prefix): look for a thread with the same ``normalize_subject``
   key whose latest message is within ``subject_window`` (30 days) of this one, most
   recent first. Non-replies never join by subject: "Invoice" every month stays apart.
4. Still nothing: start a new thread.
5. More than one thread found: the message links them. Merge them into the oldest
   (lowest id): move messages and known ids, delete the others, in one transaction.
6. Record every id in ``ids`` as known to the chosen thread, so later messages that
   reference any of them (even ones never downloaded) find it, and so a parent that
   arrives after its reply joins the reply's thread.

Scope threads per account (message-ids are not secret and can collide or be forged);
keep folders out of the key so Sent replies join Inbox conversations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "ThreadMessage",
    "Threader",
    "is_reply_subject",
    "normalize_subject",
    "strip_subject_prefixes",
    "thread_candidates",
]

SUBJECT_WINDOW = timedelta(days=30)
MAX_CANDIDATES = 60

# Reply and forward prefixes in the languages mail clients localise them to, with the
# counters some add ("Re[2]:", "Re(2):", "Re^2:") and full-width colons (CJK clients).
_REPLY_WORDS = (
    # en/la re, de aw, da/no/sv sv, fi vs, nl antw, pl odp, tr ynt, pt res, it r, lv atb, zh, ja
    r"re|aw|sv|vs|antw|odp|ynt|res|r|atb|回复|回覆|答复|返信"
)
# en fw/fwd, de wg, sv vb, nl doorst, fr tr, es rv, pt enc, pl pd, tr ilt, zh, ja
_FORWARD_WORDS = r"fwd?|wg|vb|doorst|tr|rv|enc|pd|ilt|i̇lt|转发|轉寄|轉送|転送"
_PREFIX_RE = re.compile(
    rf"(?:(?P<reply>{_REPLY_WORDS})|(?:{_FORWARD_WORDS}))[ \t]*(?:(?:\[\d+\]|\(\d+\)|\^\d+)[ \t]*)?[:：]",
    re.IGNORECASE,
)
# A leading list tag such as "[dev-list]" (RFC 2919 lists commonly add one).
_LIST_TAG_RE = re.compile(r"\[[^\[\]]{1,80}\]")
_FWD_SUFFIXES = ("(fwd)", "(fw)")


def _strip(subject: str) -> tuple[str, bool]:
    """Strip prefixes repeatedly; say whether a reply prefix was among them."""
    subject = subject or ""
    reply = False
    pos, end = 0, len(subject)
    # Each step consumes at least one character, and matching at ``pos`` avoids copying,
    # so hostile subjects cost linear time. Patterns start without \s* on purpose:
    # adjacent optional whitespace runs make regexes quadratic.
    while pos < end:
        while pos < end and subject[pos].isspace():
            pos += 1
        match = _PREFIX_RE.match(subject, pos)
        if match:
            reply = reply or match.group("reply") is not None
            pos = match.end()
            continue
        match = _LIST_TAG_RE.match(subject, pos)
        if match and subject[match.end() :].strip():
            pos = match.end()
            continue
        break
    rest = subject[pos:].strip()
    lowered = rest.lower()
    for suffix in _FWD_SUFFIXES:
        if lowered.endswith(suffix):
            rest = rest[: -len(suffix)]
            break
    return " ".join(rest.split()), reply


def strip_subject_prefixes(subject: str) -> str:
    """Return the subject without Re:/Fwd:/AW:/SV:/[list] prefixes, for display."""
    return _strip(subject)[0]


def normalize_subject(subject: str) -> str:
    """Return the subject key for threading: prefixes stripped, whitespace collapsed, casefolded."""
    return _strip(subject)[0].casefold()


def is_reply_subject(subject: str) -> bool:
    """Say whether the subject carries a reply prefix (Re:, AW:, SV:...)."""
    return _strip(subject)[1]


def thread_candidates(
    message_id: str | None, in_reply_to: str | None, references: Iterable[str] = ()
) -> list[str]:
    """Return the ids to look a thread up by, root first, the message's own id last.

    RFC 5322 3.6.4: References lists the ancestors root first; In-Reply-To names the
    parent, added after References when References does not already end with it
    (JWZ: trust References, fall back to In-Reply-To). Ids are expected without angle
    brackets (``mime.parse_message_ids``); empty and duplicate ids are dropped.
    """
    ordered: list[str] = []
    seen: set[str] = set()
    refs = list(references)
    if len(refs) > MAX_CANDIDATES:
        refs = refs[:1] + refs[-(MAX_CANDIDATES - 1) :]
    for msgid in [*refs, in_reply_to, message_id]:
        if not msgid:
            continue
        msgid = msgid.strip().strip("<>").strip()
        if msgid and msgid not in seen:
            seen.add(msgid)
            ordered.append(msgid)
    # The message's own id must come last even if a broken client also listed it.
    if message_id:
        own = message_id.strip().strip("<>").strip()
        if own in seen and ordered[-1] != own:
            ordered.remove(own)
            ordered.append(own)
    return ordered


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """What the threader needs to know about one message; ``key`` is the caller's id."""

    key: str
    message_id: str | None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    subject: str = ""
    date: datetime | None = None


@dataclass(slots=True)
class _SubjectEntry:
    thread: int
    latest: datetime | None = None


class Threader:
    """The threading algorithm of this module's docstring, on messages in memory.

    Add messages in any order with ``add``; ``thread_of`` and ``threads`` give the
    current grouping. Thread ids are ints; a merge keeps the oldest (smallest) id.
    """

    __slots__ = (
        "subject_window",
        "_parent",
        "_known_ids",
        "_message_thread",
        "_order",
        "_subjects",
        "_next_id",
    )

    def __init__(self, *, subject_window: timedelta = SUBJECT_WINDOW) -> None:
        self.subject_window = subject_window
        self._parent: dict[int, int] = {}  # union-find over thread ids
        self._known_ids: dict[str, int] = {}  # message-id (own or referenced) -> thread
        self._message_thread: dict[str, int] = {}  # caller's key -> thread
        self._order: list[str] = []
        self._subjects: dict[str, list[_SubjectEntry]] = {}
        self._next_id = 1

    def _find(self, thread: int) -> int:
        root = thread
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[thread] != root:  # path compression
            self._parent[thread], thread = root, self._parent[thread]
        return root

    def _new_thread(self) -> int:
        thread = self._next_id
        self._next_id += 1
        self._parent[thread] = thread
        return thread

    def _by_subject(self, key: str, date: datetime | None) -> int | None:
        if not key or date is None:
            return None
        best: tuple[datetime, int] | None = None
        for entry in self._subjects.get(key, ()):
            if entry.latest is None:
                continue
            try:
                close = abs(date - entry.latest) <= self.subject_window
            except TypeError:  # naive and aware datetimes mixed by the caller
                continue
            if close and (best is None or entry.latest > best[0]):
                best = (entry.latest, entry.thread)
        return self._find(best[1]) if best else None

    def _remember_subject(self, key: str, thread: int, date: datetime | None) -> None:
        if not key:
            return
        entries = self._subjects.setdefault(key, [])
        for entry in entries:
            if self._find(entry.thread) == thread:
                entry.thread = thread
                if date is not None and (entry.latest is None or _later(date, entry.latest)):
                    entry.latest = date
                return
        entries.append(_SubjectEntry(thread, date))

    def add(self, message: ThreadMessage) -> int:
        """Place ``message`` in a thread and return the thread id (steps 1-6)."""
        if message.key in self._message_thread:
            return self.thread_of(message.key)
        ids = thread_candidates(message.message_id, message.in_reply_to, message.references)
        found = sorted({self._find(self._known_ids[i]) for i in ids if i in self._known_ids})
        key, reply_prefix = _strip(message.subject)
        key = key.casefold()
        if found:
            thread = found[0]
            for other in found[1:]:
                self._parent[other] = thread  # step 5: the oldest thread absorbs the others
        else:
            is_reply = reply_prefix or bool(message.in_reply_to) or bool(message.references)
            subject_thread = self._by_subject(key, message.date) if is_reply else None
            thread = subject_thread if subject_thread is not None else self._new_thread()
        for msgid in ids:
            self._known_ids[msgid] = thread
        self._message_thread[message.key] = thread
        self._order.append(message.key)
        self._remember_subject(key, thread, message.date)
        return thread

    def thread_of(self, key: str) -> int:
        """Return the current thread id of an added message (KeyError if unknown)."""
        return self._find(self._message_thread[key])

    def threads(self) -> dict[int, list[str]]:
        """Return thread id -> message keys, in the order they were added."""
        result: dict[int, list[str]] = {}
        for key in self._order:
            result.setdefault(self.thread_of(key), []).append(key)
        return result


def _later(a: datetime, b: datetime) -> bool:
    try:
        return a > b
    except TypeError:
        return False
