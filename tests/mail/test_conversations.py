"""Threads: replies across folders, missing parents, subject fallback and merging."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.mail.conftest import append_many, message
from webmail.mail.actions.sync import do_sync_account
from webmail.mail.conversations import Threadable, assign_threads
from webmail.mail.models import Message, Thread

pytestmark = [pytest.mark.django_db]


def thread_of(account, message_id: str) -> int:
    return Message.objects.get(account=account, message_id=message_id).thread_id


@pytest.mark.mailstack
def test_a_reply_in_sent_joins_the_thread_of_the_inbox_message(account, server):
    append_many(server, "INBOX", [message(1, subject="Lunch?")])
    do_sync_account(account.pk)
    append_many(
        server, "Sent", [message(2, subject="Re: Lunch?", In_Reply_To="<m1@test>", References="<m1@test>")]
    )
    append_many(
        server,
        "INBOX",
        [message(3, subject="Re: Lunch?", In_Reply_To="<m2@test>", References="<m1@test> <m2@test>")],
    )

    do_sync_account(account.pk)

    assert thread_of(account, "m1@test") == thread_of(account, "m2@test") == thread_of(account, "m3@test")
    thread = Thread.objects.get(pk=thread_of(account, "m1@test"))
    assert thread.subject == "lunch?"
    assert thread.last_date == Message.objects.get(account=account, message_id="m3@test").date


@pytest.mark.mailstack
def test_messages_naming_a_missing_parent_join_one_thread(account, server):
    append_many(server, "INBOX", [
        message(1, subject="Re: Plan", In_Reply_To="<absent@test>", References="<root@test> <absent@test>"),
        message(2, subject="Re: Plan", References="<root@test>"),
    ])  # fmt: skip
    do_sync_account(account.pk)
    append_many(server, "INBOX", [message(3, subject="Other", References="<absent@test>")])
    do_sync_account(account.pk)

    assert thread_of(account, "m1@test") == thread_of(account, "m2@test") == thread_of(account, "m3@test")


@pytest.mark.mailstack
def test_a_reply_without_references_falls_back_to_the_subject(account, server):
    append_many(
        server, "INBOX", [message(1, subject="Quarterly report"), message(2, subject="Quarterly report")]
    )
    do_sync_account(account.pk)
    append_many(
        server, "INBOX", [message(3, subject="RE: Quarterly  Report"), message(4, subject="AW: other")]
    )
    do_sync_account(account.pk)

    # Two messages that are not replies never share a thread by subject alone.
    assert thread_of(account, "m1@test") != thread_of(account, "m2@test")
    assert thread_of(account, "m3@test") in {thread_of(account, "m1@test"), thread_of(account, "m2@test")}
    assert thread_of(account, "m4@test") not in {thread_of(account, "m1@test"), thread_of(account, "m2@test")}


@pytest.mark.mailstack
def test_a_message_linking_two_threads_merges_them(account, server):
    append_many(server, "INBOX", [message(1, subject="A"), message(2, subject="B")])
    do_sync_account(account.pk)
    assert thread_of(account, "m1@test") != thread_of(account, "m2@test")
    first_last = max(Thread.objects.filter(account=account).values_list("last_date", flat=True))

    append_many(server, "INBOX", [message(3, subject="Re: A", References="<m1@test> <m2@test>")])
    do_sync_account(account.pk)

    assert thread_of(account, "m1@test") == thread_of(account, "m2@test") == thread_of(account, "m3@test")
    assert Thread.objects.filter(account=account).count() == 1
    assert Thread.objects.get(account=account).last_date >= first_last


def _item(mid: str, *, refs: tuple[str, ...] = (), subject: str = "S", day: int = 1) -> Threadable:
    return Threadable(mid, refs[-1] if refs else "", list(refs), subject, datetime(2024, 1, day, tzinfo=UTC))


def test_items_in_one_batch_thread_with_each_other_and_merges_redirect(alice):
    from tests.accounts.factories import make_account

    account = make_account(alice)
    items = [
        _item("a@x"),
        _item("b@x", subject="T"),
        _item("c@x", refs=("a@x",), day=2),
        _item("d@x", refs=("b@x", "c@x"), day=3),  # links the two threads: the earlier items follow
        _item("e@x", subject="Re: S", day=4),  # the merged thread keeps the subject of the first
    ]

    assign_threads(account.pk, items)

    assert len({i.thread.pk for i in items}) == 1
    thread = Thread.objects.get(account=account)
    assert thread.last_date == datetime(2024, 1, 4, tzinfo=UTC)
    assert all(i.thread.pk == thread.pk for i in items)


def test_subject_fallback_ignores_old_threads_and_unrelated_accounts(alice, bob):
    from tests.accounts.factories import make_account

    mine, theirs = make_account(alice), make_account(bob)
    assign_threads(theirs.pk, [_item("x@x", subject="Budget", day=10)])
    old = _item("o@x", subject="Budget")
    assign_threads(mine.pk, [old])
    late = Threadable("r@x", "", [], "Re: Budget", datetime(2024, 6, 1, tzinfo=UTC))

    assign_threads(mine.pk, [late])

    assert late.thread.pk != old.thread.pk  # more than 30 days apart
    assert late.thread.account_id == mine.pk
