"""The operators' commands: sync_account (with progress) and sync_status."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from tests.mail.conftest import append_many, message
from webmail.mail.locks import account_lock

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]


def test_sync_account_prints_progress_and_a_summary(account, server, capsys):
    append_many(server, "INBOX", [message(i) for i in range(5)])

    call_command("sync_account", str(account.pk))

    out = capsys.readouterr().out
    assert "INBOX: 5/5 messages" in out
    assert "5 new" in out and "Done in" in out


def test_sync_account_finds_the_account_by_address_and_fails_clearly(account, capsys):
    call_command("sync_account", account.email, "--folder", "INBOX")
    assert "Done in" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no mail account"):
        call_command("sync_account", "nobody@example.test")
    with account_lock(account.pk):
        with pytest.raises(CommandError, match="another sync"):
            call_command("sync_account", str(account.pk))


def test_sync_status_shows_state_failures_and_folders(account, server, capsys):
    append_many(server, "INBOX", [message(i) for i in range(3)], flags=(b"\\Seen",))
    call_command("sync_account", str(account.pk))
    capsys.readouterr()

    call_command("sync_status", "--folders")

    out = capsys.readouterr().out
    assert account.email in out and " ok " in out
    assert "INBOX" in out and "3 msgs" in out and "0 unread" in out

    account.set_incoming_password("wrong")
    account.save()
    with pytest.raises(CommandError, match="sync failed"):
        call_command("sync_account", str(account.pk))
    call_command("sync_status", str(account.pk))
    out = capsys.readouterr().out
    assert "auth_failed" in out and "refused the user name or password" in out
