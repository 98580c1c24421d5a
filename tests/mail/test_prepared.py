"""Prepared queries return what their queryset would, bind new ids each call, and refuse bad shapes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Profile
from tests.mail.factories_reading import make_mailbox, make_message
from webmail.mail import search
from webmail.mail.models import Folder, Message
from webmail.mail.prepared import PreparedQuery
from webmail.mail.views.shell import folder_tree

pytestmark = pytest.mark.django_db

FIELDS = ["pk", "account_id", "folder_id", "subject", "seen", "flagged", "date", "to", "size"]


def as_tuples(messages: list[Message]) -> list[tuple]:
    return [tuple(getattr(m, name) for name in FIELDS) for m in messages]


def test_models_with_select_related_equal_the_querysets(alice):
    inbox = make_mailbox(alice)["inbox"]
    first = make_message(inbox, subject="One")
    make_message(inbox, subject="Two", flags=("\\Seen", "\\Flagged"))
    build = lambda folder_id: (  # noqa: E731
        Message.objects.filter(folder_id=folder_id)
        .select_related("folder", "account")
        .order_by("-date", "-id")
    )
    prepared = PreparedQuery(build)
    got = prepared(inbox.pk)
    expected = list(build(inbox.pk))
    assert as_tuples(got) == as_tuples(expected)
    assert [m.folder.name for m in got] == ["INBOX", "INBOX"]
    assert got[0].account.user_id == alice.pk
    assert isinstance(got[0].seen, bool) and got[0].date.tzinfo is not None  # converters applied
    assert prepared(first.pk + 10_000) == []  # another id, same SQL, no rows


def test_each_call_binds_its_own_ids_and_runs_one_query(alice, bob):
    mine = make_mailbox(alice)["inbox"]
    theirs = make_mailbox(bob)["inbox"]
    prepared = PreparedQuery(
        lambda pk, user_id: Folder.objects.select_related("account").filter(pk=pk, account__user_id=user_id),
        arity=2,
    )
    prepared(mine.pk, alice.pk)  # compiled here
    with CaptureQueriesContext(connection) as queries:
        assert prepared(mine.pk, alice.pk) == [mine]
        assert prepared(theirs.pk, bob.pk) == [theirs]
        assert prepared(theirs.pk, alice.pk) == []
    assert len(queries) == 3


def test_values_lists_come_back_as_values(alice):
    Profile.objects.update_or_create(user=alice, defaults={"messages_per_page": 25})
    prepared = PreparedQuery(
        lambda user_id: Profile.objects.filter(user_id=user_id).values_list("messages_per_page", flat=True)[
            :1
        ]
    )
    assert prepared(alice.pk) == [25]
    assert prepared(alice.pk + 1000) == []


def test_a_query_that_ignores_its_id_is_refused():
    prepared = PreparedQuery(lambda pk: Folder.objects.all())
    with pytest.raises(ValueError, match="must appear once"):
        prepared(1)


@pytest.mark.parametrize(
    "build",
    [
        lambda pk: Folder.objects.filter(pk=pk).select_for_update(),
        lambda pk: Folder.objects.filter(pk=pk).prefetch_related("messages"),
        lambda pk: Folder.objects.filter(pk=pk).union(Folder.objects.filter(pk=pk + 1)),
    ],
)
def test_locking_prefetching_and_combined_queries_are_refused(build):
    with pytest.raises(ValueError, match="cannot"):
        PreparedQuery(build)(1)


def test_an_id_beyond_64_bits_finds_nothing_instead_of_failing(alice):
    inbox = make_mailbox(alice)["inbox"]
    prepared = PreparedQuery(lambda pk: Folder.objects.filter(pk=pk))
    assert prepared(inbox.pk) == [inbox]
    assert prepared(2**63) == [] and prepared(-(2**63) - 1) == [] and prepared(10**30) == []


def test_list_rows_carry_the_list_fields_in_order():
    assert tuple(search.ListRow.__dataclass_fields__) == search.LIST_FIELDS


def test_the_number_of_ids_is_checked():
    prepared = PreparedQuery(lambda a, b: Folder.objects.filter(pk=a, account_id=b), arity=2)
    with pytest.raises(TypeError):
        prepared(1)


def test_a_folders_first_page_equals_the_orm_listing(alice):
    inbox = make_mailbox(alice)["inbox"]
    for n in range(7):
        make_message(inbox, subject=f"Message {n}")
    for sort in search.SORTS:
        page = search.list_page([search.folder_scope(inbox)], sort=sort, page_size=5)
        orm = search.list_page([Message.objects.filter(folder=inbox)], sort=sort, page_size=5)
        assert [m.pk for m in page.messages] == [m.pk for m in orm.messages]
        assert page.next_cursor == orm.next_cursor
        following = search.list_page(
            [search.folder_scope(inbox)], sort=sort, cursor=page.next_cursor, page_size=5
        )
        assert len(following.messages) == 2


def test_the_folder_tree_is_one_query_with_special_folders_first(alice, bob):
    folders = make_mailbox(alice, name="Work")
    make_mailbox(bob)
    Folder.objects.create(account=folders["inbox"].account, name="INBOX/Projects", delimiter="/")
    with CaptureQueriesContext(connection) as queries:
        trees = folder_tree(alice)
    assert len(queries) == 1
    assert [t.account.name for t in trees] == ["Work"]
    names = [f.display_name for f in trees[0].folders]
    assert names[0] == "Inbox" and "Projects" in names
    assert {f.pk for f in trees[0].folders} == set(
        Folder.objects.filter(account__user=alice).values_list("pk", flat=True)
    )
    assert [f.depth for f in trees[0].folders if f.display_name == "Projects"] == [1]
    assert trees[0].sync is None or not trees[0].sync.in_first_sync
