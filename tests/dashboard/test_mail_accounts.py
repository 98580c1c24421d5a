"""Operator actions on one mail account: resync, disable/enable, reset a stuck lock; limits."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.limits import effective_limits
from accounts.models import AuditEvent, Limits, MailAccount
from tests.accounts.factories import make_account
from tests.accounts.test_forms import GOOD
from webmail.mail.locks import lock_key, redis_client

pytestmark = pytest.mark.django_db


def test_account_page_shows_sync_state_without_passwords(client, alice, operator):
    from webmail.mail.models import Folder

    account = make_account(alice, password="imap-secret")
    Folder.objects.create(account=account, name="INBOX", last_error="NO [UNAVAILABLE] try later")
    client.force_login(operator)
    body = client.get(reverse("dashboard:account", args=[account.pk])).content.decode()
    assert "INBOX" in body and "try later" in body
    assert "imap-secret" not in body and account.incoming_password_token not in body


def test_resync_enqueues_a_sync_and_is_audited(client, alice, operator, django_capture_on_commit_callbacks):
    account = make_account(alice)
    client.force_login(operator)
    with django_capture_on_commit_callbacks() as callbacks:
        client.post(reverse("dashboard:account_resync", args=[account.pk]))
    assert len(callbacks) == 1
    event = AuditEvent.objects.get(kind="operator_action", user=alice)
    assert event.detail == {"action": "resync", "account_id": account.pk, "operator": "operator"}


def test_disable_and_enable(client, alice, operator):
    account = make_account(alice)
    client.force_login(operator)
    client.post(reverse("dashboard:account_enabled", args=[account.pk]), {"enabled": "0"})
    account.refresh_from_db()
    assert account.state == "disabled"
    client.post(reverse("dashboard:account_enabled", args=[account.pk]), {"enabled": "1"})
    account.refresh_from_db()
    assert account.state == "new"
    # The person sees what the operator did in their own activity log.
    client.force_login(alice)
    assert b"Operator action" in client.get(reverse("activity")).content


def test_reset_a_stuck_lock(client, alice, operator):
    account = make_account(alice)
    redis_client().set(lock_key(account.pk), "stuck", ex=60)
    client.force_login(operator)
    client.post(reverse("dashboard:account_reset_lock", args=[account.pk]))
    assert redis_client().get(lock_key(account.pk)) is None


def test_limits_person_over_global_over_settings(client, alice, bob, operator, settings):
    settings.WEBMAIL_MAX_ACCOUNTS_PER_PERSON = 10
    client.force_login(operator)
    client.post(
        reverse("dashboard:limits"), {"max_accounts": 2, "max_cache_mb": "", "max_sends_per_hour": 50}
    )
    client.post(reverse("dashboard:person", args=[alice.pk]), {"max_accounts": 1, "max_cache_mb": 5})
    assert Limits.objects.count() == 2
    alices, bobs = effective_limits(alice), effective_limits(bob)
    assert (alices.max_accounts, alices.max_cache_bytes, alices.max_sends_per_hour) == (
        1,
        5 * 1024 * 1024,
        50,
    )
    assert (bobs.max_accounts, bobs.max_cache_bytes) == (2, None)
    # The account limit is enforced when adding a mail account.
    make_account(alice)
    client.force_login(alice)
    client.post(reverse("mail_account_add"), GOOD)
    assert MailAccount.objects.filter(user=alice).count() == 1


def test_audit_log_filters(client, alice, operator):
    from accounts import signals

    signals.record(AuditEvent.Kind.LOGIN, alice)
    signals.record(AuditEvent.Kind.LOGIN, operator)
    client.force_login(operator)
    page = client.get(reverse("dashboard:audit"), {"user": "alice", "kind": "login"})
    assert [e.user for e in page.context["page"].object_list] == [alice]
