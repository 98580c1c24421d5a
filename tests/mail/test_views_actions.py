"""Actions from the list, the message and the keyboard: they change the cache at once, only by POST."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from tests.mail.factories_reading import make_mailbox, make_message
from webmail.mail.models import Folder, Message, PendingChange

pytestmark = pytest.mark.django_db


@pytest.fixture
def box(alice):
    return make_mailbox(alice)


def post(client, ids, action, **extra):
    data = {"ids": [m.pk for m in ids], "action": action, **extra}
    return client.post("/mail/actions/", data, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="list-pane")


def test_mark_read_and_unread_many(client, alice, box):
    a, b = make_message(box["inbox"]), make_message(box["inbox"])
    client.force_login(alice)
    response = post(client, [a, b], "read", next=f"/mail/folder/{box['inbox'].pk}/")
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"]) == {
        "mail-status": {"value": "Marked 2 messages read.", "target": "body"}
    }
    assert set(Message.objects.values_list("seen", flat=True)) == {True}
    assert b'hx-swap-oob="true"' in response.content and b'class="msg-row"' in response.content
    assert Folder.objects.get(pk=box["inbox"].pk).unread_count == 0
    post(client, [a], "unread")
    assert not Message.objects.get(pk=a.pk).seen
    assert PendingChange.objects.filter(kind="flags").count() == 2


def test_flag_and_unflag(client, alice, box):
    m = make_message(box["inbox"])
    client.force_login(alice)
    post(client, [m], "flag")
    assert Message.objects.get(pk=m.pk).flagged
    post(client, [m], "unflag")
    assert not Message.objects.get(pk=m.pk).flagged


def test_archive_spam_and_move(client, alice, box):
    a, b, c = (make_message(box["inbox"]) for _ in range(3))
    client.force_login(alice)
    post(client, [a], "archive")
    post(client, [b], "spam")
    post(client, [c], "move", target=box["drafts"].pk)
    assert Message.objects.get(pk=a.pk).folder_id == box["archive"].pk
    assert Message.objects.get(pk=b.pk).folder_id == box["junk"].pk
    assert Message.objects.get(pk=c.pk).folder_id == box["drafts"].pk


def test_delete_moves_to_trash_then_deleting_from_trash_needs_confirmation(client, alice, box):
    m = make_message(box["inbox"])
    client.force_login(alice)
    post(client, [m], "delete")
    assert Message.objects.get(pk=m.pk).folder_id == box["trash"].pk
    response = post(client, [m], "delete")
    error = json.loads(response["HX-Trigger"])["mail-error"]
    assert response.status_code == 409 and "confirm" in error["value"] and error["target"] == "body"
    assert Message.objects.filter(pk=m.pk).exists()
    page = client.post("/mail/actions/", {"ids": [m.pk], "action": "delete"})
    assert b"Delete for good?" in page.content
    post(client, [m], "delete-forever")
    assert not Message.objects.filter(pk=m.pk).exists()


def test_action_from_the_message_pane_updates_the_pane(client, alice, box):
    m = make_message(box["inbox"], subject="Open one")
    client.force_login(alice)
    response = post(client, [m], "flag", open=m.pk, next=f"/mail/folder/{box['inbox'].pk}/")
    assert b'id="message-pane"' in response.content and b"Open one" in response.content
    response = post(client, [m], "archive", open=m.pk, next=f"/mail/folder/{box['inbox'].pk}/")
    assert b"Archived 1 message." in response.content


def test_without_htmx_the_action_redirects_back(client, alice, box):
    m = make_message(box["inbox"])
    client.force_login(alice)
    url = f"/mail/folder/{box['inbox'].pk}/?sort=from"
    response = client.post("/mail/actions/", {"ids": [m.pk], "action": "read", "next": url})
    assert response.status_code == 302 and response["Location"] == url
    response = client.post("/mail/actions/", {"ids": [m.pk], "action": "read", "next": "https://evil.test/"})
    assert response["Location"] == "/"


def test_another_persons_messages_are_404_and_untouched(client, alice, bob, box):
    m = make_message(box["inbox"])
    mine = make_message(make_mailbox(bob)["inbox"])
    client.force_login(bob)
    assert post(client, [m], "read").status_code == 404
    assert post(client, [mine, m], "archive").status_code == 404
    assert not Message.objects.get(pk=m.pk).seen
    assert Message.objects.get(pk=mine.pk).folder.special_use == "inbox"


def test_moving_into_another_persons_folder_is_404(client, alice, bob, box):
    theirs = make_mailbox(bob)
    m = make_message(box["inbox"])
    client.force_login(alice)
    assert post(client, [m], "move", target=theirs["archive"].pk).status_code == 404
    assert Message.objects.get(pk=m.pk).folder_id == box["inbox"].pk


def test_moving_across_accounts_is_refused_with_a_message(client, alice, box):
    other = make_mailbox(alice, name="Other", email="alice@other.test")
    m = make_message(box["inbox"])
    client.force_login(alice)
    response = post(client, [m], "move", target=other["archive"].pk)
    assert response.status_code == 400 and "same account" in response.content.decode()


def test_bad_requests_are_refused(client, alice, box):
    m = make_message(box["inbox"])
    client.force_login(alice)
    assert post(client, [m], "explode").status_code == 400
    assert client.post("/mail/actions/", {"action": "read"}, HTTP_HX_REQUEST="true").status_code == 400
    assert client.get("/mail/actions/").status_code == 405


def test_actions_need_the_csrf_token(alice, box):
    m = make_message(box["inbox"])
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/mail/actions/", {"ids": [m.pk], "action": "read"}).status_code == 403
    assert client.post(f"/mail/message/{m.pk}/read/").status_code == 403
    assert client.post(f"/mail/message/{m.pk}/remote/").status_code == 403
    assert not Message.objects.get(pk=m.pk).seen


def test_a_person_marks_a_folder_for_push_and_another_cannot(client, alice, bob):
    from django.test import Client

    from tests.accounts.factories import make_account
    from webmail.mail.models import Folder

    account = make_account(alice, name="Push")
    folder = Folder.objects.create(account=account, name="Lists")
    client.force_login(alice)
    response = client.post(reverse("mail_folder_notify", args=[folder.pk]), {"notify": "on"})
    assert response.status_code == 302
    folder.refresh_from_db()
    assert folder.notify
    other = Client()
    other.force_login(bob)
    assert other.post(reverse("mail_folder_notify", args=[folder.pk]), {"notify": "off"}).status_code == 404
    folder.refresh_from_db()
    assert folder.notify
    assert client.get(reverse("mail_folder_notify", args=[folder.pk])).status_code == 405
