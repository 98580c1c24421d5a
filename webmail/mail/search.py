"""Find a person's messages: folder listings and full-text search, paged by keyset (never OFFSET).

One interface for both databases: the full-text index is an FTS5 table on SQLite and a tsvector
table with a GIN index on PostgreSQL (both named ``mail_message_fts``, created by migration 0002
and kept in sync by triggers on ``mail_messagebody``). The document has four parts, so operators
can target one: subject, sender, recipients (To, Cc, Bcc) and body.
"""

from __future__ import annotations

import base64
import functools
import heapq
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import BigIntegerField, Count, Exists, Func, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from accounts.models import MailAccount
from webmail.mail.models import Folder, Message, SpecialUse
from webmail.mail.prepared import PreparedQuery

PAGE_SIZE = 50
SORTS = ("date", "from", "subject", "size")
# Columns a list needs: never the JSON recipient lists of every row, never the body.
LIST_FIELDS = (
    "id", "folder_id", "account_id", "thread_id", "seen", "flagged", "answered", "draft", "deleted",
    "date", "size", "subject", "from_name", "from_email", "snippet", "has_attachments",
)  # fmt: skip

# sort name -> (field, descending)
_SORT_FIELDS = {
    "date": ("date", True),
    "from": ("from_name", False),
    "subject": ("subject", False),
    "size": ("size", True),
}
_WORD_RE = re.compile(r"[^\W_]+")
_TOKEN_RE = re.compile(r'(-?)([a-z]+):(?:"([^"]*)"?|(\S+))|"([^"]*)"?|(\S+)', re.IGNORECASE)
# FTS column names and the PostgreSQL weights standing in for them.
_COLUMNS = {"subject": "A", "sender": "B", "recipients": "C", "body": "D"}


@dataclass(slots=True)
class ListRow:
    """One message as a list shows it: the LIST_FIELDS values, read as plain values (building a
    model instance per row cost a 50-row page ~0.7 ms)."""

    id: int
    folder_id: int
    account_id: int
    thread_id: int | None
    seen: bool
    flagged: bool
    answered: bool
    draft: bool
    deleted: bool
    date: datetime
    size: int
    subject: str
    from_name: str
    from_email: str
    snippet: str
    has_attachments: bool

    @property
    def pk(self) -> int:
        return self.id


@dataclass
class Page:
    """One page of a listing: the rows, the cursor of the next page, and conversation sizes."""

    messages: list[ListRow]
    next_cursor: str | None
    thread_counts: dict[int, int] = field(default_factory=dict)


@dataclass
class ParsedQuery:
    """A search box query split into full-text terms and structured filters."""

    terms: list[tuple[str | None, str]] = field(default_factory=list)  # (column or None, words)
    unread: bool | None = None
    flagged: bool | None = None
    has_attachment: bool = False
    folder: str | None = None
    before: date | None = None
    after: date | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (
            self.terms
            or self.unread is not None
            or self.flagged is not None
            or self.has_attachment
            or self.folder
            or self.before
            or self.after
        )


# --- cursors ----------------------------------------------------------------------------------------


def encode_cursor(sort: str, message: ListRow) -> str:
    name, _desc = _SORT_FIELDS[sort]
    value = getattr(message, name)
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([value, message.pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(sort: str, cursor: str | None) -> tuple[object, int] | None:
    """Return (sort value, id) from a cursor, or None when it is absent or garbled (first page)."""
    if not cursor:
        return None
    try:
        value, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(pk, int):
            return None
        if sort == "date":
            value = datetime.fromisoformat(value)
        elif sort == "size":
            value = int(value)
        elif not isinstance(value, str):
            return None
    except (ValueError, TypeError, json.JSONDecodeError):
        return None
    return value, pk


def _after_cursor(qs: QuerySet[Message], sort: str, cursor: tuple[object, int] | None) -> QuerySet[Message]:
    name, desc = _SORT_FIELDS[sort]
    qs = qs.order_by(f"-{name}", "-id") if desc else qs.order_by(name, "id")
    if cursor is None:
        return qs
    value, pk = cursor
    # The plain bound (<= or >=) lets the database start its index range scan at the cursor; the OR
    # alone is read by SQLite as a filter over the whole index, which makes deep pages slow.
    if desc:
        return qs.filter(**{f"{name}__lte": value}).filter(
            Q(**{f"{name}__lt": value}) | Q(**{name: value, "id__lt": pk})
        )
    return qs.filter(**{f"{name}__gte": value}).filter(
        Q(**{f"{name}__gt": value}) | Q(**{name: value, "id__gt": pk})
    )


def _newest_of_thread(qs: QuerySet[Message], scope: QuerySet[Message]) -> QuerySet[Message]:
    """Keep one row per conversation: the newest message of its thread within SCOPE."""
    newer = scope.filter(thread_id=OuterRef("thread_id")).filter(
        Q(date__gt=OuterRef("date")) | Q(date=OuterRef("date"), id__gt=OuterRef("id"))
    )
    return qs.filter(Q(thread__isnull=True) | ~Exists(newer))


def _key(sort: str, m: ListRow) -> tuple:
    name, desc = _SORT_FIELDS[sort]
    value = getattr(m, name)
    if desc:
        return (_Reverse(value), _Reverse(m.pk))
    return (value, m.pk)


class _Reverse:
    """Invert the order of a value inside a sort key (for merging descending lists)."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return other.value < self.value  # type: ignore[operator]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and other.value == self.value


@dataclass(frozen=True)
class FolderScope:
    """The messages of one folder. Its first page, the most common read, is a prepared query."""

    folder_id: int

    def messages(self) -> QuerySet[Message]:
        return Message.objects.filter(folder_id=self.folder_id)


Scope = QuerySet[Message] | FolderScope


def _messages(scope: Scope) -> QuerySet[Message]:
    return scope.messages() if isinstance(scope, FolderScope) else scope


@functools.cache  # at most 4 sorts x page sizes up to 200 (list_page's bound)
def _first_page_query(sort: str, rows: int) -> PreparedQuery[tuple]:
    """The first ROWS of a folder in SORT order, as LIST_FIELDS values."""
    return PreparedQuery(
        lambda folder_id: _after_cursor(FolderScope(folder_id).messages(), sort, None).values_list(
            *LIST_FIELDS
        )[:rows]
    )


def list_page(
    scopes: Iterable[Scope],
    *,
    sort: str = "date",
    cursor: str | None = None,
    conversations: bool = False,
    page_size: int = PAGE_SIZE,
) -> Page:
    """Return one page of the messages in SCOPES (one queryset per folder, or one for a search).

    Each scope is paged on its own index by keyset and the pages are merged, so "All inboxes" stays
    as fast as one folder at any depth.
    """
    sort = sort if sort in SORTS else "date"
    position = decode_cursor(sort, cursor)
    candidates: list[ListRow] = []
    scope_list = list(scopes)
    for scope in scope_list:
        if isinstance(scope, FolderScope) and position is None and not conversations and page_size <= 200:
            values = _first_page_query(sort, page_size + 1)(scope.folder_id)
        else:
            qs = _messages(scope)
            if conversations:
                qs = _newest_of_thread(qs, qs)
            values = _after_cursor(qs, sort, position).values_list(*LIST_FIELDS)[: page_size + 1]
        candidates.extend(ListRow(*row) for row in values)
    if len(scope_list) == 1:  # already in order
        rows = candidates
    else:
        rows = heapq.nsmallest(page_size + 1, candidates, key=lambda m: _key(sort, m))
    more = len(rows) > page_size
    rows = rows[:page_size]
    page = Page(rows, encode_cursor(sort, rows[-1]) if more and rows else None)
    if conversations:
        page.thread_counts = thread_counts(scope_list, rows)
    return page


def thread_counts(scopes: list[Scope], rows: list[ListRow]) -> dict[int, int]:
    """Return {thread id: messages of it in SCOPES} for the threads of ROWS."""
    ids = {m.thread_id for m in rows if m.thread_id}
    counts: dict[int, int] = {}
    if not ids:
        return counts
    for scope in scopes:
        for thread_id, n in (
            _messages(scope)
            .filter(thread_id__in=ids)
            .order_by()
            .values_list("thread_id")
            .annotate(n=Count("id"))
        ):
            counts[thread_id] = counts.get(thread_id, 0) + n
    return counts


# --- scopes -----------------------------------------------------------------------------------------


def folder_scope(folder: Folder) -> FolderScope:
    return FolderScope(folder.pk)


_inbox_ids: PreparedQuery[int] = PreparedQuery(
    lambda user_id: (
        Folder.objects.filter(account__user_id=user_id, special_use=SpecialUse.INBOX)
        .order_by("id")
        .values_list("id", flat=True)
    )
)
account_ids: PreparedQuery[int] = PreparedQuery(
    lambda user_id: MailAccount.objects.filter(user_id=user_id).order_by("id").values_list("id", flat=True)
)


def all_inboxes_scopes(user: AbstractBaseUser) -> list[FolderScope]:
    return [FolderScope(pk) for pk in _inbox_ids(user.pk)]


# --- search -----------------------------------------------------------------------------------------


def parse_query(text: str) -> ParsedQuery:
    """Split a search box query into full-text terms and the operators Gmail users know."""
    parsed = ParsedQuery()
    for match in _TOKEN_RE.finditer(text[:1000]):
        _neg, op, op_quoted, op_plain, quoted, plain = match.groups()
        if op is None:
            words = quoted if quoted is not None else plain
            if words and _WORD_RE.search(words):
                parsed.terms.append((None, words))
            continue
        op = op.lower()
        value = (op_quoted if op_quoted is not None else op_plain or "").strip()
        lowered = value.lower()
        if op in ("from", "to", "subject", "body"):
            column = {"from": "sender", "to": "recipients"}.get(op, op)
            if _WORD_RE.search(value):
                parsed.terms.append((column, value))
        elif op == "is" and lowered in ("unread", "read"):
            parsed.unread = lowered == "unread"
        elif op == "is" and lowered in ("flagged", "starred", "unflagged"):
            parsed.flagged = lowered != "unflagged"
        elif op == "has" and lowered in ("attachment", "attachments"):
            parsed.has_attachment = True
        elif op == "in" and value:
            parsed.folder = value
        elif op in ("before", "after"):
            try:
                day = date.fromisoformat(value.replace("/", "-"))
            except ValueError:
                parsed.errors.append(f"{op}:{value}")
                continue
            setattr(parsed, op, day)
        else:  # an unknown operator is searched as text, like Gmail does
            parsed.terms.append((None, match.group(0)))
    return parsed


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD_RE.findall(text)][:20]


def fts5_query(terms: list[tuple[str | None, str]]) -> str:
    """Return an FTS5 MATCH expression: every term a prefix phrase, ANDed (words only: no syntax leaks)."""
    parts = []
    for column, text in terms:
        words = _words(text)
        if not words:
            continue
        phrase = '"' + " ".join(words) + '"*'
        parts.append(f"{column} : {phrase}" if column else phrase)
    return " AND ".join(parts)


def tsquery(terms: list[tuple[str | None, str]]) -> str:
    """Return a to_tsquery('simple', ...) expression: prefix phrases, weights standing for columns."""
    parts = []
    for column, text in terms:
        words = _words(text)
        if not words:
            continue
        weight = _COLUMNS[column] if column else ""
        phrase = " <-> ".join(f"'{w}':*{weight}" for w in words)
        parts.append(f"({phrase})")
    return " & ".join(parts)


# Above this many full-text hits, SQLite is steered to walk the messages newest first (see below).
MANY_HITS = 1000


class _NotIndexed(Func):
    """SQLite's unary + on a column: the same value, but the planner may not look it up by index."""

    template = "+%(expressions)s"
    output_field = BigIntegerField()


def _many_hits(sql: str, expression: str) -> bool:
    """Whether the full-text index holds more than MANY_HITS matches (stops counting there)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql} LIMIT %s) AS hits", [expression, MANY_HITS + 1])  # noqa: S608
        return cursor.fetchone()[0] > MANY_HITS


def _fulltext_filter(
    qs: QuerySet[Message], terms: list[tuple[str | None, str]]
) -> tuple[QuerySet[Message], bool]:
    """Return QS limited to the messages matching TERMS, and whether they are many.

    A common word matches tens of thousands of messages; looking each one up and sorting them all
    costs ~80-100 ms at 100,000 messages on either database. With many hits the page is instead
    read newest first from the (account, date) index, each message checked against the index, until
    it is full (a few ms): on SQLite the id test is made unindexable (unary +) so the planner walks
    the date index; on PostgreSQL the caller asks per account (see search_scopes). For a rare word
    the few hits are fetched by id, which stays cheaper.
    """
    if not terms:
        return qs, False
    if connection.vendor == "postgresql":
        expression = tsquery(terms)
        if not expression:
            return qs, False
        sql = "SELECT message_id FROM mail_message_fts WHERE document @@ to_tsquery('simple', %s)"
        # The SQL is a constant; the user's words travel as a parameter.
        return qs.filter(id__in=RawSQL(sql, [expression])), _many_hits(sql, expression)  # noqa: S611
    expression = fts5_query(terms)
    if not expression:
        return qs, False
    sql = "SELECT rowid FROM mail_message_fts WHERE mail_message_fts MATCH %s"
    if _many_hits(sql, expression):
        return qs.alias(_walk_id=_NotIndexed("id")).filter(_walk_id__in=RawSQL(sql, [expression])), True  # noqa: S611
    return qs.filter(id__in=RawSQL(sql, [expression])), False  # noqa: S611


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def search_scopes(
    user: AbstractBaseUser,
    query: ParsedQuery,
    *,
    folder: Folder | None = None,
    account_id: int | None = None,
) -> list[QuerySet[Message]]:
    """Return USER's messages matching QUERY (within FOLDER or ACCOUNT_ID when given) as querysets
    for list_page: one, or on PostgreSQL with many full-text hits one per account, each read newest
    first from its (account, date) index (over several accounts at once PostgreSQL sorts them all)."""
    accounts = account_ids(user.pk)
    if folder is not None:
        accounts = [folder.account_id] if folder.account_id in accounts else []
    if account_id is not None:
        accounts = [account_id] if account_id in accounts else []
    qs = Message.objects.all()
    if folder is not None:
        qs = qs.filter(folder=folder)
    qs, many = _fulltext_filter(qs, query.terms)
    if query.unread is not None:
        qs = qs.filter(seen=not query.unread)
    if query.flagged is not None:
        qs = qs.filter(flagged=query.flagged)
    if query.has_attachment:
        qs = qs.filter(has_attachments=True)
    if query.folder:
        name = query.folder.lower()
        uses = [u for u in SpecialUse.values if u and u == name]
        by_name = Q(folder__name__iexact=query.folder) | Q(folder__name__iendswith="/" + query.folder)
        qs = qs.filter(by_name | Q(folder__special_use__in=uses) if uses else by_name)
    if query.after:
        qs = qs.filter(date__gte=_day_start(query.after))
    if query.before:
        qs = qs.filter(date__lt=_day_start(query.before))
    if many and connection.vendor == "postgresql":
        return [qs.filter(account_id=pk) for pk in accounts]
    return [qs.filter(account_id__in=accounts)]


def search_page(
    user: AbstractBaseUser,
    text: str,
    *,
    folder: Folder | None = None,
    account_id: int | None = None,
    cursor: str | None = None,
    page_size: int = PAGE_SIZE,
) -> tuple[ParsedQuery, Page]:
    """Search USER's mail for TEXT; return the parsed query and one page of results, newest first."""
    query = parse_query(text)
    if query.is_empty:
        return query, Page([], None)
    scopes = search_scopes(user, query, folder=folder, account_id=account_id)
    return query, list_page(scopes, sort="date", cursor=cursor, page_size=page_size)
