"""Mail passwords are encrypted at rest, and keys can be rotated."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from accounts import credentials
from accounts.credentials import CredentialError
from tests.accounts.factories import make_account


def test_round_trip_and_tokens_hide_the_secret(settings):
    settings.WEBMAIL_CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    token = credentials.encrypt("s3cret pässword")
    assert "s3cret" not in token
    assert credentials.decrypt(token) == "s3cret pässword"
    assert credentials.encrypt("") == "" and credentials.decrypt("") == ""


def test_old_key_still_decrypts_after_rotation_and_rotate_moves_to_new_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.WEBMAIL_CREDENTIAL_KEYS = [old]
    token = credentials.encrypt("pw")
    settings.WEBMAIL_CREDENTIAL_KEYS = [new, old]
    assert credentials.decrypt(token) == "pw"
    rotated = credentials.rotate(token)
    settings.WEBMAIL_CREDENTIAL_KEYS = [new]
    assert credentials.decrypt(rotated) == "pw"
    with pytest.raises(CredentialError):
        credentials.decrypt(token)


@pytest.mark.django_db
def test_rotate_credentials_command_reencrypts_every_account(settings, alice):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.WEBMAIL_CREDENTIAL_KEYS = [old]
    account = make_account(alice, password="imap-pw", smtp_password="smtp-pw")
    settings.WEBMAIL_CREDENTIAL_KEYS = [new, old]
    call_command("rotate_credentials", verbosity=0)
    settings.WEBMAIL_CREDENTIAL_KEYS = [new]
    account.refresh_from_db()
    assert account.get_incoming_password() == "imap-pw"
    assert account.get_smtp_password() == "smtp-pw"


@pytest.mark.django_db
def test_password_is_not_stored_in_clear(alice):
    account = make_account(alice, password="visible-if-broken")
    from accounts.models import MailAccount

    row = MailAccount.objects.filter(pk=account.pk).values().get()
    assert "visible-if-broken" not in repr(row)
