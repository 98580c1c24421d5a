"""Export of one's mail (mbox per folder, zipped) and deleting one's account with everything in it."""

from __future__ import annotations

import io
import mailbox
import zipfile

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import models
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import two_factor
from accounts.export import unquote_mboxrd
from accounts.models import AuditEvent, Limits, MailAccount, Profile
from tests.accounts.factories import make_account
from tests.conftest import PASSWORD
from webmail.mail.blobs import pack
from webmail.mail.models import Folder, Message, MessageBody

pytestmark = pytest.mark.django_db

RAW = [
    b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Hello\r\nMessage-ID: <1@example.test>\r\n"
    b"Date: Mon, 2 Jun 2025 10:00:00 +0000\r\n\r\nHi Alice,\r\nFrom here on, all is fine.\r\n>From the quoted.\r\n",
    b"From: Carol <carol@example.test>\r\nTo: alice@example.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    b"Message-ID: <2@example.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa9t\xc3\xa9\r\n",
    b"From: Dan <dan@example.test>\r\nSubject: no final newline\r\nMessage-ID: <3@example.test>\r\n\r\nlast line",
]


def store(account: MailAccount, folder_name: str, raws: list[bytes]) -> Folder:
    folder = Folder.objects.create(account=account, name=folder_name, delimiter="/")
    for uid, raw in enumerate(raws, start=1):
        message = Message.objects.create(
            account=account,
            folder=folder,
            uid=uid,
            internal_date=timezone.now(),
            date=timezone.now(),
            size=len(raw),
            subject=f"m{uid}",
            from_email="x@example.test",
            message_id=f"<{uid}@example.test>",
        )
        MessageBody.objects.create(message=message, raw_compressed=pack(raw), text="")
    return folder


def download(client: Client) -> zipfile.ZipFile:
    response = client.post(reverse("export_mail"))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_export_reimports_to_the_same_messages(client, alice, bob, tmp_path):
    account = make_account(alice)
    store(account, "INBOX", RAW)
    store(account, "Archive/2024", RAW[:1])
    store(make_account(bob), "INBOX", [b"Subject: bob's secret\r\n\r\nsecret\r\n"])
    client.force_login(alice)
    archive = download(client)
    names = [n for n in archive.namelist() if n.endswith(".mbox")]
    assert len(names) == 2
    inbox = next(n for n in names if "INBOX" in n)
    path = tmp_path / "inbox.mbox"
    path.write_bytes(archive.read(inbox))
    imported = [unquote_mboxrd(m.as_bytes(unixfrom=False)) for m in mailbox.mbox(str(path))]
    assert len(imported) == 3
    for raw, back in zip(RAW, imported, strict=True):
        expected = raw.replace(b"\r\n", b"\n")
        assert back.rstrip(b"\n") == expected.rstrip(b"\n")
    assert [m["Message-ID"] for m in mailbox.mbox(str(path))] == [f"<{i}@example.test>" for i in (1, 2, 3)]
    assert b"bob's secret" not in b"".join(archive.read(n) for n in archive.namelist())
    assert AuditEvent.objects.filter(user=alice, kind="data_exported").exists()


def test_export_needs_post_and_sign_in(client, alice):
    assert client.post(reverse("export_mail")).status_code == 302
    client.force_login(alice)
    assert client.get(reverse("export_mail")).status_code == 405


def test_deletion_needs_the_password_and_the_word(client, alice):
    client.force_login(alice)
    assert (
        client.post(reverse("delete_account"), {"password": "wrong", "confirm": "DELETE"}).status_code == 400
    )
    assert (
        client.post(reverse("delete_account"), {"password": PASSWORD, "confirm": "delete"}).status_code == 400
    )
    assert get_user_model().objects.filter(pk=alice.pk).exists()


def test_deleting_an_account_leaves_nothing_of_the_person(client, alice, bob, operator):
    account = make_account(alice, password="alice-imap-secret", smtp_password="alice-smtp-secret")
    store(account, "INBOX", RAW)
    bobs = make_account(bob)
    store(bobs, "INBOX", RAW[:1])
    Profile.objects.create(user=alice, display_name="Alice A.")
    Limits.objects.create(user=alice, max_accounts=3)
    device = two_factor.pending_device(alice)
    codes = two_factor.confirm_device(device)
    # A failed sign-in under her name, and sign-ins (with 2FA) in two browsers.
    Client().post(reverse("login"), {"username": "alice", "password": "wrong"})
    other = Client()
    for browser, code in ((other, codes[0]), (client, codes[1])):
        browser.post(reverse("login"), {"username": "alice", "password": PASSWORD})
        assert browser.post(reverse("login_code"), {"code": code}).status_code == 302
    token = account.incoming_password_token

    response = client.post(reverse("delete_account"), {"password": PASSWORD, "confirm": "DELETE"})
    assert response.status_code == 302

    # Nothing anywhere points at her, mentions her name, or holds her credential.
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, models.ForeignKey) and field.related_model is get_user_model():
                assert not model.objects.filter(**{field.name: alice.pk}).exists(), model
    assert not MailAccount.objects.filter(pk=account.pk).exists()
    assert not MessageBody.objects.filter(message__account_id=account.pk).exists()
    assert not Folder.objects.filter(account_id=account.pk).exists()
    assert all(s.get_decoded().get("_auth_user_id") != str(alice.pk) for s in Session.objects.all())
    from axes.models import AccessAttempt

    assert not AccessAttempt.objects.filter(username="alice").exists()
    dump = repr(list(AuditEvent.objects.values())) + repr(list(MailAccount.objects.values()))
    assert "alice" not in dump and token not in dump
    assert AuditEvent.objects.filter(kind="person_deleted", detail__former_user_id=alice.pk).exists()
    assert other.get(reverse("home")).status_code == 302
    # Bob's things are untouched.
    assert Message.objects.filter(account=bobs).count() == 1
