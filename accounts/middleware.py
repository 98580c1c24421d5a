"""Sign-in security on every request: the two-step login, required 2FA, the sessions list, time zone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone

from accounts import sessions
from accounts.two_factor import has_two_factor

CHECKED_KEY = "_webmail_2fa_checked"
TIME_ZONE_KEY = "_webmail_tz"
# Pages a signed-in person may open before setting up a required second factor.
SETUP_ALLOWED = {"two_factor_setup", "logout", "login", "login_code", "security"}


class AccountSecurityMiddleware:
    """Route every sign-in through the two-step login and keep signed-in sessions honest.

    - Django's and the admin's login views are replaced by accounts.views.login, which asks for the
      authenticator code before a session exists.
    - A session made any other way for a person with 2FA is ended unless it passed the code step.
    - With WEBMAIL_REQUIRE_2FA, people without an authenticator are sent to set one up.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tz = request.session.get(TIME_ZONE_KEY) if hasattr(request, "session") else None
        if tz:
            try:
                timezone.activate(tz)
            except Exception:  # noqa: BLE001  an unknown zone name falls back to the default
                timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    def process_view(
        self, request: HttpRequest, view_func: Callable, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        from accounts.views import login as login_views

        if getattr(view_func, "view_class", None) is auth_views.LoginView:
            return login_views.login(request)
        if isinstance(getattr(view_func, "__self__", None), AdminSite) and view_func.__name__ == "login":
            return redirect_to_login(request.GET.get("next") or "/admin/")
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if not request.session.get(CHECKED_KEY):
            if has_two_factor(user) and not user.is_verified():
                logout(request)
                return redirect_to_login(request.get_full_path())
            request.session[CHECKED_KEY] = True
        url_name = request.resolver_match.url_name if request.resolver_match else None
        if (
            settings.WEBMAIL_REQUIRE_2FA
            and url_name not in SETUP_ALLOWED
            and not request.path.startswith(settings.STATIC_URL)
            and not user.is_verified()
        ):
            return redirect("two_factor_setup")
        sessions.touch(request)
        return None
