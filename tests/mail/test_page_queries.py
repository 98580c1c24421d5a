"""The pages people open most run a fixed, small number of queries, however much mail there is.

Counts, not timings: a query added to the list, the open message or the search (an N+1 over rows or
folders, a lazy relation) fails here. What each one is for is written next to its number.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.mail.factories_reading import empty_fulltext_queue, make_mailbox, make_message

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def reading(client, alice):
    """Alice signed in, two accounts (six folders each), 30 messages in one inbox, a first page seen."""
    box = make_mailbox(alice)
    make_mailbox(alice, name="Private", email="alice@private.test")
    messages = [make_message(box["inbox"], subject=f"Meeting notes {n}") for n in range(30)]
    empty_fulltext_queue()
    client.force_login(alice)
    client.get(f"/mail/folder/{box['inbox'].pk}/", **HTMX, HTTP_HX_TARGET="mail")  # session settles
    return client, box, messages


def count(client, url: str, target: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **HTMX, HTTP_HX_TARGET=target)
    assert response.status_code == 200
    return len(queries)


def test_listing_a_folder(reading):
    client, box, _ = reading
    # the person, the folder, the page size, the rows, the folder tree
    assert count(client, f"/mail/folder/{box['inbox'].pk}/", "mail") <= 5


def test_opening_a_read_message(reading):
    client, _, messages = reading
    message = messages[3]
    message.seen = True
    message.save(update_fields=["seen"])
    # the person, the message (with folder and account), its conversation, its stored body, the tree
    assert count(client, f"/mail/message/{message.pk}/", "message-pane") <= 5


def test_searching(reading):
    client, *_ = reading
    # the person, the account ids, the hit estimate (PostgreSQL), the rows, the index queue, the tree
    assert count(client, "/mail/search/?q=meeting", "list-pane") <= 6
