"""The mailbox pages: all inboxes, a folder, sorting, keyset paging, conversations and empty states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests.mail.factories_reading import make_mailbox, make_message
from webmail.mail.models import SyncState

pytestmark = pytest.mark.django_db


@pytest.fixture
def box(alice):
    return make_mailbox(alice)


def test_home_without_account_offers_to_add_one(client, alice):
    client.force_login(alice)
    response = client.get("/")
    assert response.status_code == 200
    assert b"Add a mail account" in response.content


def test_home_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_home_shows_all_inboxes_of_every_account(client, alice, box):
    other = make_mailbox(alice, name="Private", email="alice@private.test")
    make_message(box["inbox"], subject="Work mail")
    make_message(other["inbox"], subject="Private mail")
    make_message(box["archive"], subject="Archived mail")
    client.force_login(alice)
    response = client.get("/")
    page = response.content.decode()
    assert "Work mail" in page and "Private mail" in page
    assert "Archived mail" not in page
    assert "All inboxes" in page and "Private" in page


def test_folder_page_lists_messages_with_markers(client, alice, box):
    make_message(
        box["inbox"],
        subject="Unread one",
        sender="Dave <dave@example.test>",
        attachments=[("a.txt", "text/plain", b"x")],
        flags=("\\Flagged",),
    )
    make_message(box["inbox"], subject="Read one", flags=("\\Seen",))
    client.force_login(alice)
    page = client.get(f"/mail/folder/{box['inbox'].pk}/").content.decode()
    assert 'class="msg-row unread flagged"' in page
    assert "Has attachments" in page and "Dave" in page
    assert page.count('class="msg-row"') == 1  # the read one
    assert 'aria-current="page"' in page  # the folder is marked current in the tree
    assert f'id="count-{box["inbox"].pk}"' in page


def test_dates_are_relative_for_today(client, alice, box):
    now = timezone.now()
    make_message(box["inbox"], subject="Today", date=now)
    make_message(box["inbox"], subject="Long ago", date=datetime(2020, 5, 17, 8, 0, tzinfo=UTC))
    client.force_login(alice)
    page = client.get(f"/mail/folder/{box['inbox'].pk}/").content.decode()
    assert "05/17/2020" in page
    assert timezone.localtime(now).strftime("%Y") not in page.split("Today")[1].split("</time>")[0]


def test_person_time_zone_comes_from_the_cookie(client, alice, box):
    make_message(box["inbox"], subject="Zoned", date=datetime(2020, 5, 17, 23, 30, tzinfo=UTC))
    client.force_login(alice)
    client.cookies["tz"] = "Asia/Tokyo"
    page = client.get(f"/mail/folder/{box['inbox'].pk}/").content.decode()
    assert "05/18/2020" in page  # already the next day in Tokyo
    client.cookies["tz"] = "Not/AZone"
    assert client.get(f"/mail/folder/{box['inbox'].pk}/").status_code == 200


def test_another_persons_folder_is_404(client, bob, box):
    client.force_login(bob)
    assert client.get(f"/mail/folder/{box['inbox'].pk}/").status_code == 404


def test_keyset_pages_walk_the_folder_without_gaps_or_repeats(client, alice, box):
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(60):
        # Pairs share a date: the id breaks ties.
        make_message(box["inbox"], subject=f"Number {i:03d}", date=base + timedelta(hours=i // 2))
    client.force_login(alice)
    url = f"/mail/folder/{box['inbox'].pk}/"
    seen = []
    while url:
        response = client.get(url)
        listing = response.context["listing"]
        seen += [m.subject for m in listing.page.messages]
        url = listing.next_url
    assert len(seen) == 60 and len(set(seen)) == 60
    assert seen[0] in ("Number 059", "Number 058")


def test_garbled_cursor_shows_the_first_page(client, alice, box):
    make_message(box["inbox"], subject="First")
    client.force_login(alice)
    response = client.get(f"/mail/folder/{box['inbox'].pk}/?after=%%%garbage")
    assert response.status_code == 200 and b"First" in response.content


def test_sort_by_sender_and_subject_and_size(client, alice, box):
    make_message(box["inbox"], subject="b", sender="Zed <z@example.test>", text="x" * 10)
    make_message(box["inbox"], subject="a", sender="Amy <a@example.test>", text="x" * 5000)
    client.force_login(alice)
    url = f"/mail/folder/{box['inbox'].pk}/"
    subjects = lambda r: [m.subject for m in r.context["listing"].page.messages]  # noqa: E731
    assert subjects(client.get(url + "?sort=from")) == ["a", "b"]
    assert subjects(client.get(url + "?sort=subject")) == ["a", "b"]
    assert subjects(client.get(url + "?sort=size")) == ["a", "b"]


def test_conversations_view_collapses_a_thread_with_its_count(client, alice, box):
    first = make_message(
        box["inbox"], subject="Plan", message_id="p1@example.test", date=datetime(2024, 1, 1, tzinfo=UTC)
    )
    make_message(
        box["inbox"],
        subject="Re: Plan",
        message_id="p2@example.test",
        in_reply_to="p1@example.test",
        date=datetime(2024, 1, 2, tzinfo=UTC),
    )
    make_message(box["inbox"], subject="Other", date=datetime(2024, 1, 3, tzinfo=UTC))
    client.force_login(alice)
    response = client.get(f"/mail/folder/{box['inbox'].pk}/?view=conversations")
    listing = response.context["listing"]
    assert [m.subject for m in listing.page.messages] == ["Other", "Re: Plan"]
    assert listing.page.thread_counts[first.thread_id] == 2
    assert b'class="thread-count"' in response.content
    assert b"Show messages" in response.content


def test_htmx_list_request_returns_only_the_list(client, alice, box):
    make_message(box["inbox"], subject="Partial")
    client.force_login(alice)
    response = client.get(
        f"/mail/folder/{box['inbox'].pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="list-pane"
    )
    assert b"<html" not in response.content and b"Partial" in response.content
    response = client.get(f"/mail/folder/{box['inbox'].pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="mail")
    assert b"<html" not in response.content and b'id="folders"' in response.content


def test_empty_folder_says_so(client, alice, box):
    client.force_login(alice)
    assert b"No mail here" in client.get(f"/mail/folder/{box['trash'].pk}/").content


def test_first_sync_shows_progress(client, alice, box):
    SyncState.objects.create(account=box["inbox"].account, progress_done=30, progress_total=120)
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert '<progress id="sync-' in page and 'max="120" value="30"' in page


def test_mail_pages_allow_style_attributes_only_for_the_mail_iframe(client, alice, box):
    client.force_login(alice)
    csp = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "style-src-attr 'unsafe-inline'" in csp and "unsafe-eval" not in csp


def test_search_page_lists_results_and_scopes_to_a_folder(client, alice, bob, box):
    make_message(box["inbox"], subject="Budget in inbox")
    make_message(box["archive"], subject="Budget archived")
    make_message(make_mailbox(bob)["inbox"], subject="Budget of bob")
    client.force_login(alice)
    page = client.get("/mail/search/?q=budget").content.decode()
    assert "Budget in inbox" in page and "Budget archived" in page and "Budget of bob" not in page
    page = client.get(f"/mail/search/?q=budget&folder={box['archive'].pk}").content.decode()
    assert "Budget archived" in page and "Budget in inbox" not in page
    assert "No messages match" in client.get("/mail/search/?q=nothingatall").content.decode()


def test_search_in_another_persons_folder_is_404(client, bob, box):
    client.force_login(bob)
    assert client.get(f"/mail/search/?q=x&folder={box['inbox'].pk}").status_code == 404


def test_the_list_follows_the_persons_messages_per_page_setting(client, alice):
    from accounts.models import Profile
    from webmail.mail.views.shell import page_size_for

    assert page_size_for(alice.pk) == 50
    Profile.objects.update_or_create(user=alice, defaults={"messages_per_page": 25})
    assert page_size_for(alice.pk) == 25
    Profile.objects.filter(user=alice).update(messages_per_page=5000)
    assert page_size_for(alice.pk) == 200
