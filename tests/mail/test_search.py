"""Search: query parsing, both full-text engines through one interface, operators and paging."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.mail.factories_reading import make_mailbox, make_message
from webmail.mail.models import Message
from webmail.mail.search import fts5_query, parse_query, search_page, tsquery


def test_parse_query_splits_operators_and_text():
    q = parse_query(
        'invoice from:carol to:"Alice Example" subject:report has:attachment is:unread '
        'is:flagged in:Archive after:2024-01-01 before:2024/02/01 "exact words"'
    )
    assert q.terms == [
        (None, "invoice"),
        ("sender", "carol"),
        ("recipients", "Alice Example"),
        ("subject", "report"),
        (None, "exact words"),
    ]
    assert q.has_attachment and q.unread is True and q.flagged is True
    assert q.folder == "Archive"
    assert q.after == date(2024, 1, 1) and q.before == date(2024, 2, 1)


def test_parse_query_reports_bad_dates_and_keeps_unknown_operators_as_text():
    q = parse_query("before:yesterday foo:bar")
    assert q.errors == ["before:yesterday"]
    assert q.terms == [(None, "foo:bar")]


def test_engine_queries_contain_only_words():
    terms = [(None, 'a"b OR c*'), ("sender", "alice@example.test"), (None, "NEAR(x")]
    assert fts5_query(terms) == '"a b or c"* AND sender : "alice example test"* AND "near x"*'
    assert tsquery(terms) == (
        "('a':* <-> 'b':* <-> 'or':* <-> 'c':*) & ('alice':*B <-> 'example':*B <-> 'test':*B) "
        "& ('near':* <-> 'x':*)"
    )


@pytest.fixture(params=["few hits", "many hits"])
def walk(request, monkeypatch):
    """Run a test on both SQLite plans: hits looked up by id, and the newest-first index walk."""
    from webmail.mail import search

    if request.param == "many hits":
        monkeypatch.setattr(search, "MANY_HITS", 0)
    return request.param


@pytest.fixture
def boxes(alice, bob):
    mine = make_mailbox(alice)
    theirs = make_mailbox(bob)
    return mine, theirs


def _subjects(page):
    return [m.subject for m in page.messages]


@pytest.mark.django_db
def test_search_finds_body_subject_and_addresses(alice, boxes, walk):
    mine, _ = boxes
    make_message(mine["inbox"], subject="Quarterly report", text="Numbers are up.\n")
    make_message(
        mine["inbox"],
        subject="Lunch",
        text="The invoice is attached, Grüße.\n",
        sender="Dave <dave@example.test>",
    )
    make_message(mine["archive"], subject="Old", to="Zoë <zoe@example.test>")
    assert _subjects(search_page(alice, "quarterly")[1]) == ["Quarterly report"]
    assert _subjects(search_page(alice, "invoic")[1]) == ["Lunch"]  # prefix match
    assert _subjects(search_page(alice, "grusse")[1]) == ["Lunch"] or _subjects(
        search_page(alice, "grüße")[1]
    ) == ["Lunch"]
    assert _subjects(search_page(alice, "from:dave@example.test")[1]) == ["Lunch"]
    assert _subjects(search_page(alice, "from:dave")[1]) == ["Lunch"]
    assert _subjects(search_page(alice, "to:zoe")[1]) == ["Old"]
    assert _subjects(search_page(alice, "subject:lunch")[1]) == ["Lunch"]
    assert _subjects(search_page(alice, "subject:invoice")[1]) == []


@pytest.mark.django_db
def test_search_never_returns_another_persons_mail(alice, bob, boxes, walk):
    mine, theirs = boxes
    make_message(theirs["inbox"], subject="Secret plans")
    assert _subjects(search_page(alice, "secret")[1]) == []
    assert _subjects(search_page(bob, "secret")[1]) == ["Secret plans"]


@pytest.mark.django_db
def test_search_operators_filter(alice, boxes, walk):
    mine, _ = boxes
    a = make_message(
        mine["inbox"], subject="Alpha one", flags=("\\Seen",), date=datetime(2024, 1, 10, tzinfo=UTC)
    )
    make_message(
        mine["inbox"],
        subject="Alpha two",
        flags=("\\Flagged",),
        attachments=[("a.txt", "text/plain", b"x")],
        date=datetime(2024, 2, 10, tzinfo=UTC),
    )
    make_message(mine["archive"], subject="Alpha three", date=datetime(2024, 3, 10, tzinfo=UTC))
    assert _subjects(search_page(alice, "alpha is:unread")[1]) == ["Alpha three", "Alpha two"]
    assert _subjects(search_page(alice, "alpha is:read")[1]) == ["Alpha one"]
    assert _subjects(search_page(alice, "is:flagged")[1]) == ["Alpha two"]
    assert _subjects(search_page(alice, "has:attachment")[1]) == ["Alpha two"]
    assert _subjects(search_page(alice, "alpha in:archive")[1]) == ["Alpha three"]
    assert _subjects(search_page(alice, "alpha in:INBOX")[1]) == ["Alpha two", "Alpha one"]
    assert _subjects(search_page(alice, "after:2024-02-01 before:2024-03-01")[1]) == ["Alpha two"]
    assert _subjects(search_page(alice, "alpha", folder=mine["archive"])[1]) == ["Alpha three"]
    assert _subjects(search_page(alice, "alpha", account_id=a.account_id)[1]) == [
        "Alpha three",
        "Alpha two",
        "Alpha one",
    ]


@pytest.mark.django_db
def test_search_results_are_paged_by_keyset(alice, boxes, walk):
    mine, _ = boxes
    for i in range(7):
        make_message(mine["inbox"], subject=f"Paged {i}", date=datetime(2024, 1, 1 + i, tzinfo=UTC))
    seen: list[str] = []
    cursor = None
    while True:
        _, page = search_page(alice, "paged", cursor=cursor, page_size=3)
        seen += _subjects(page)
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == [f"Paged {i}" for i in reversed(range(7))]


@pytest.mark.django_db
def test_index_follows_deletes(alice, boxes):
    mine, _ = boxes
    m = make_message(mine["inbox"], subject="Ephemeral")
    Message.objects.filter(pk=m.pk).delete()
    assert _subjects(search_page(alice, "ephemeral")[1]) == []
