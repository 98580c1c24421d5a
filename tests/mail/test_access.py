"""access_* load a person's own folders, messages and threads; anything else is the same 404."""

from __future__ import annotations

import pytest
from django.http import Http404

from tests.mail.factories_reading import make_mailbox, make_message
from webmail.mail.access import access_folder, access_message, access_messages, access_thread

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox(alice):
    return make_mailbox(alice)["inbox"]


def test_access_folder_returns_own_folder(alice, inbox):
    assert access_folder(alice, inbox.pk) == inbox


def test_access_folder_refuses_another_persons_folder(bob, inbox):
    with pytest.raises(Http404):
        access_folder(bob, inbox.pk)


@pytest.mark.parametrize("bad", [999999, "x", None, -1, 0, 2**63, "99999999999999999999"])
def test_access_folder_treats_missing_and_garbled_ids_as_404(alice, bad):
    with pytest.raises(Http404):
        access_folder(alice, bad)


def test_access_message_returns_own_message(alice, inbox):
    m = make_message(inbox)
    assert access_message(alice, m.pk) == m


def test_access_message_refuses_another_persons_message(bob, inbox):
    m = make_message(inbox)
    with pytest.raises(Http404):
        access_message(bob, m.pk)


@pytest.mark.parametrize("bad", [424242, 2**63, "99999999999999999999"])
def test_access_message_missing_is_404(alice, bad):
    with pytest.raises(Http404):
        access_message(alice, bad)


def test_access_messages_returns_all_own(alice, inbox):
    a, b = make_message(inbox), make_message(inbox)
    assert access_messages(alice, [str(b.pk), a.pk, b.pk]) == [a, b]


def test_access_messages_treats_an_id_beyond_64_bits_as_missing(alice, inbox):
    make_message(inbox)
    with pytest.raises(Http404):
        access_messages(alice, [2**63])


def test_access_messages_refuses_when_one_is_not_yours(alice, bob, inbox):
    mine = make_message(inbox)
    theirs = make_message(make_mailbox(bob)["inbox"])
    with pytest.raises(Http404):
        access_messages(alice, [mine.pk, theirs.pk])


def test_access_messages_refuses_empty_and_huge_lists(alice):
    with pytest.raises(Http404):
        access_messages(alice, [])
    with pytest.raises(Http404):
        access_messages(alice, range(1, 2000))


def test_access_thread_returns_own_thread(alice, inbox):
    m = make_message(inbox)
    assert access_thread(alice, m.thread_id) == m.thread


def test_access_thread_refuses_another_persons_thread(bob, inbox):
    m = make_message(inbox)
    with pytest.raises(Http404):
        access_thread(bob, m.thread_id)
    with pytest.raises(Http404):
        access_thread(bob, 987654)
