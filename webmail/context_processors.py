"""Template context shared by every page."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def product(request: HttpRequest) -> dict[str, object]:
    """Expose the few settings templates need."""
    return {"signup_open": settings.WEBMAIL_SIGNUP == "open"}
