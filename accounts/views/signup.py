"""Sign-up: open (optionally with email verification), by invite, or closed."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters

from accounts import people, signals
from accounts.forms import SignupForm, VerifiedSignupForm
from accounts.models import AuditEvent

BACKEND = "accounts.backends.ModelBackend"


@sensitive_post_parameters("password1", "password2")
def signup(request: HttpRequest) -> HttpResponse:
    """Create a person; sign them in, or mail them a link first when verification is on."""
    if people.signup_policy() != "open":
        raise Http404("Sign-up is closed")
    if request.user.is_authenticated:
        return redirect("home")
    verify = settings.WEBMAIL_SIGNUP_VERIFY_EMAIL
    form = (VerifiedSignupForm if verify else SignupForm)(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save(commit=False)
            user.is_active = not verify
            user.save()
            signals.record(AuditEvent.Kind.SIGNUP, user, request)
        if user.email:
            people.send_verification(request, user)
        if verify:
            return render(request, "registration/verify_sent.html", {"email": user.email})
        login(request, user, backend=BACKEND)
        return redirect("mail_account_add")
    return render(request, "registration/signup.html", {"form": form})


def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    """Open the link from the verification mail: mark the address verified, sign in if needed."""
    user = people.check_verification(token)
    if user is None:
        return render(request, "registration/verify_failed.html", status=400)
    was_active = user.is_active
    people.do_verify_email(user, request)
    messages.success(request, _("Thank you: your email address is verified."))
    if not was_active and not request.user.is_authenticated:
        login(request, user, backend=BACKEND)
        return redirect("mail_account_add")
    return redirect("home")


@sensitive_post_parameters("password1", "password2")
def signup_invite(request: HttpRequest, token: str) -> HttpResponse:
    """Sign up with an invite link (invite-only and open policies)."""
    if people.signup_policy() == "closed":
        raise Http404("Sign-up is closed")
    invite = people.find_invite(token)
    if invite is None:
        return render(request, "registration/invite_invalid.html", status=404)
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None, initial={"email": invite.email})
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            if not people.do_use_invite(invite, user):
                transaction.set_rollback(True)
                return render(request, "registration/invite_invalid.html", status=404)
            signals.record(AuditEvent.Kind.SIGNUP, user, request, invite_id=invite.pk)
            if invite.email and user.email.lower() == invite.email.lower():
                people.do_verify_email(user, request)
        if user.email and not (invite.email and user.email.lower() == invite.email.lower()):
            people.send_verification(request, user)
        login(request, user, backend=BACKEND)
        return redirect("mail_account_add")
    return render(request, "registration/signup.html", {"form": form, "invite": invite})
