"""The settings page: a person's preferences are stored and applied."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Profile

pytestmark = pytest.mark.django_db

GOOD = {
    "display_name": "Alice A.",
    "language": "en",
    "time_zone": "Europe/Paris",
    "theme": "dark",
    "messages_per_page": 100,
    "undo_send_seconds": 20,
    "remote_content": "allow",
    "desktop_notifications": "on",
}


def test_it_saves_preferences(client, alice):
    client.force_login(alice)
    page = client.get(reverse("preferences"))
    assert page.status_code == 200
    for label in ("Display name", "Time zone", "Theme", "Messages per page", "Undo send delay (seconds)"):
        assert label in page.content.decode()
    response = client.post(reverse("preferences"), GOOD)
    assert response.status_code == 302
    profile = Profile.objects.get(user=alice)
    assert (profile.theme, profile.messages_per_page, profile.undo_send_seconds) == ("dark", 100, 20)
    assert profile.remote_content == "allow" and profile.desktop_notifications
    assert AuditEvent.objects.filter(user=alice, kind="settings_changed").exists()


def test_time_zone_applies_to_pages(client, alice, rf):
    from django.http import HttpResponse
    from django.utils import timezone

    from accounts.middleware import TIME_ZONE_KEY, AccountSecurityMiddleware

    client.force_login(alice)
    client.post(reverse("preferences"), GOOD)
    assert client.session[TIME_ZONE_KEY] == "Europe/Paris"
    request = rf.get("/")
    request.session = {TIME_ZONE_KEY: "Europe/Paris"}
    seen = AccountSecurityMiddleware(lambda r: HttpResponse(timezone.get_current_timezone_name()))(request)
    assert seen.content == b"Europe/Paris"


@pytest.mark.parametrize(
    "field,value",
    [
        ("messages_per_page", 5),
        ("undo_send_seconds", 61),
        ("time_zone", "Mars/Base"),
        ("display_name", "a\nb"),
    ],
)
def test_it_refuses_bad_values(client, alice, field, value):
    client.force_login(alice)
    response = client.post(reverse("preferences"), {**GOOD, field: value})
    assert response.status_code == 200 and field in response.context["form"].errors
