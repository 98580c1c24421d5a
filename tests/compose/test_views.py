"""The compose pages: ownership, CSRF, field errors before sending, header injection, undo."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Identity
from tests.accounts.factories import make_account
from webmail.compose.actions import drafts
from webmail.compose.models import OutgoingMessage, State

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def form(account, **kw):
    identity = Identity.objects.get(account=account)
    data = {"identity": identity.pk, "to": "Bob <bob@example.test>", "subject": "Hi", "body_text": "Hello"}
    data.update(kw)
    return data


def test_the_new_message_page_has_a_labelled_form(alice_client, alice):
    make_account(alice)
    page = alice_client.get(reverse("compose_new")).content.decode()
    for label in (
        'for="id_to"',
        'for="id_cc"',
        'for="id_bcc"',
        'for="id_subject"',
        'for="id_body_text"',
        'for="id_identity"',
        'for="id_files"',
        'for="id_send_at"',
        'for="id_html_mode"',
    ):
        assert label in page
    assert "<script>" not in page and "style=" not in page


def test_send_queues_the_message_and_shows_its_state(alice_client, alice, settings):
    settings.WEBMAIL_UNDO_SEND_SECONDS = 10
    account = make_account(alice)
    r = alice_client.post(reverse("compose_send"), form(account, bcc="carol@example.test"))
    o = OutgoingMessage.objects.get(user=alice)
    assert r.status_code == 302 and r["Location"] == reverse("compose_status", args=[o.pk])
    assert o.state == State.QUEUED and o.rcpts == ["bob@example.test", "carol@example.test"]
    page = alice_client.get(r["Location"]).content.decode()
    assert "Undo" in page and "sending in" in page
    r = alice_client.post(reverse("compose_undo", args=[o.pk]))
    assert r["Location"] == reverse("compose_edit", args=[o.pk])
    o.refresh_from_db()
    assert o.state == State.DRAFT
    page = alice_client.get(r["Location"]).content.decode()
    assert "carol@example.test" in page  # everything comes back, Bcc included


def test_invalid_addresses_are_field_errors_and_nothing_is_queued(alice_client, alice):
    account = make_account(alice)
    r = alice_client.post(
        reverse("compose_send"), form(account, to="bob@, Good <ok@example.test>", cc="x y z")
    )
    assert r.status_code == 400
    errors = r.context["form"].errors
    assert "to" in errors and "cc" in errors
    assert not OutgoingMessage.objects.filter(state=State.QUEUED).exists()


def test_no_recipient_is_a_field_error(alice_client, alice):
    account = make_account(alice)
    r = alice_client.post(reverse("compose_send"), form(account, to=""))
    assert r.status_code == 400 and "to" in r.context["form"].errors


@pytest.mark.parametrize("field", ["subject", "to", "cc", "bcc"])
def test_header_injection_is_a_form_error(alice_client, alice, field):
    account = make_account(alice)
    value = (
        "Hi\r\nBcc: victim@example.org"
        if field == "subject"
        else "bob@example.test\r\nBcc: victim@example.org"
    )
    r = alice_client.post(reverse("compose_send"), form(account, **{field: value}))
    assert r.status_code == 400
    assert field in r.context["form"].errors
    assert not OutgoingMessage.objects.filter(state=State.QUEUED).exists()


def test_autosave_creates_then_updates_one_draft(alice_client, alice):
    account = make_account(alice)
    r = alice_client.post(reverse("compose_save"), form(account, to="bob@"), HTTP_ACCEPT="application/json")
    j = r.json()
    assert j["errors"]["to"]
    r = alice_client.post(
        reverse("compose_save"),
        form(account, draft=j["id"], subject="Second"),
        HTTP_ACCEPT="application/json",
    )
    assert r.json()["id"] == j["id"]
    assert OutgoingMessage.objects.get().subject == "Second"


def test_upload_limits_give_a_clear_error(alice_client, alice, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.WEBMAIL_MAX_ATTACHMENT_BYTES = 1024
    account = make_account(alice)
    o = drafts.do_create(alice, Identity.objects.get(account=account))
    r = alice_client.post(
        reverse("compose_attach", args=[o.pk]), {"file": SimpleUploadedFile("big.bin", b"x" * 2048)}
    )
    assert r.status_code == 400
    assert "at most 1.0" in r.json()["errors"][0]
    r = alice_client.post(
        reverse("compose_attach", args=[o.pk]), {"file": SimpleUploadedFile("ok.txt", b"x")}
    )
    assert r.json()["attachments"][0]["content_type"] == "text/plain"


def test_bob_gets_404_for_alices_drafts_and_outbox(client, alice, bob):
    account = make_account(alice)
    o = drafts.do_create(alice, Identity.objects.get(account=account))
    att = drafts.do_add_attachment(o, "a.txt", "", b"x", per_file=10, total=10)
    make_account(bob)
    client.force_login(bob)
    for name in ("compose_edit", "compose_status"):
        assert client.get(reverse(name, args=[o.pk])).status_code == 404
    for name in ("compose_undo", "compose_discard", "compose_attach", "compose_edit_again"):
        assert client.post(reverse(name, args=[o.pk])).status_code == 404
    assert client.post(reverse("compose_attachment_remove", args=[o.pk, att.pk])).status_code == 404
    bob_identity = Identity.objects.get(account__user=bob)
    r = client.post(reverse("compose_save"), {"identity": bob_identity.pk, "draft": o.pk})
    assert r.status_code == 404
    alice_identity = Identity.objects.get(account=account)
    r = client.post(reverse("compose_save"), {"identity": alice_identity.pk, "to": "x@example.test"})
    assert r.status_code == 400  # not one of bob's identities
    assert OutgoingMessage.objects.count() == 1


def test_replying_to_someone_elses_message_is_404(client, alice, bob):
    from django.utils import timezone

    from webmail.mail.models import Folder, Message

    account = make_account(alice)
    folder = Folder.objects.create(account=account, name="INBOX", special_use="inbox")
    m = Message.objects.create(
        account=account, folder=folder, uid=1, internal_date=timezone.now(), date=timezone.now()
    )
    make_account(bob)
    client.force_login(bob)
    for name in (
        "compose_reply",
        "compose_reply_all",
        "compose_forward",
        "compose_forward_attached",
        "compose_open_draft",
    ):
        assert client.get(reverse(name, args=[m.pk])).status_code == 404


def test_posts_need_the_csrf_token(alice):
    account = make_account(alice)
    c = Client(enforce_csrf_checks=True)
    c.force_login(alice)
    assert c.post(reverse("compose_send"), form(account)).status_code == 403
    assert c.post(reverse("compose_save"), form(account)).status_code == 403
    assert not OutgoingMessage.objects.exists()


def test_get_never_changes_state(alice_client, alice):
    account = make_account(alice)
    assert alice_client.get(reverse("compose_send")).status_code == 405
    alice_client.get(reverse("compose_new"))
    assert not OutgoingMessage.objects.exists()
    assert account


def test_the_persons_undo_delay_is_used_when_they_set_one(alice, settings):
    from accounts.models import Profile
    from webmail.compose.views.compose import undo_delay_for

    settings.WEBMAIL_UNDO_SEND_SECONDS = 10
    assert undo_delay_for(alice) is None  # the operator's default applies
    Profile.objects.update_or_create(user=alice, defaults={"undo_send_seconds": 30})
    assert undo_delay_for(alice) == 30
