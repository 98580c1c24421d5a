"""Sign-up page (open sign-up only; otherwise staff create people in the admin)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters

from accounts import signals
from accounts.forms import SignupForm
from accounts.models import AuditEvent


@sensitive_post_parameters("password1", "password2")
def signup(request: HttpRequest) -> HttpResponse:
    """Create a person and sign them in."""
    if settings.WEBMAIL_SIGNUP != "open":
        raise Http404("Sign-up is closed")
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        signals.record(AuditEvent.Kind.SIGNUP, user, request)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("mail_account_add")
    return render(request, "registration/signup.html", {"form": form})
