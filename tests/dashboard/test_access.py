"""Only staff reach the dashboard: anonymous people are sent to sign in, others get 403."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Invite, MailAccount
from tests.accounts.factories import make_account

pytestmark = pytest.mark.django_db


def every_view(alice, operator):
    account = make_account(alice)
    from accounts import people

    invite, _ = people.do_create_invite(operator)
    return [
        ("get", reverse("dashboard:overview")),
        ("get", reverse("dashboard:system")),
        ("get", reverse("dashboard:people")),
        ("get", reverse("dashboard:person", args=[alice.pk])),
        ("post", reverse("dashboard:person", args=[alice.pk])),
        ("get", reverse("dashboard:lockouts")),
        ("post", reverse("dashboard:unlock")),
        ("get", reverse("dashboard:account", args=[account.pk])),
        ("post", reverse("dashboard:account_resync", args=[account.pk])),
        ("post", reverse("dashboard:account_enabled", args=[account.pk])),
        ("post", reverse("dashboard:account_reset_lock", args=[account.pk])),
        ("get", reverse("dashboard:limits")),
        ("post", reverse("dashboard:limits")),
        ("get", reverse("dashboard:invites")),
        ("post", reverse("dashboard:invites")),
        ("post", reverse("dashboard:invite_revoke", args=[invite.pk])),
        ("get", reverse("dashboard:audit")),
    ]


def test_every_dashboard_view_sends_anonymous_people_to_sign_in(client, alice, operator):
    for method, url in every_view(alice, operator):
        response = getattr(client, method)(url, {"enabled": "0", "days": 3, "max_accounts": 1})
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("login")), url


def test_every_dashboard_view_refuses_people_who_are_not_staff(client, alice, bob, operator):
    views = every_view(alice, operator)
    client.force_login(bob)
    for method, url in views:
        response = getattr(client, method)(url, {"enabled": "0", "days": 3, "max_accounts": 1})
        assert response.status_code == 403, url
    # Nothing was changed by the refused posts.
    assert not MailAccount.objects.filter(state="disabled").exists()
    assert Invite.objects.count() == 1 and Invite.objects.get().usable


def test_staff_reach_every_page(client, alice, operator, monkeypatch):
    from webmail.dashboard import figures

    monkeypatch.setattr(figures, "worker_heartbeats", lambda: [])
    client.force_login(operator)
    for method, url in every_view(alice, operator):
        if method == "get":
            assert client.get(url).status_code == 200, url
