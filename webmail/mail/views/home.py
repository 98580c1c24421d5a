"""The start page: all inboxes of the person, or a first step when they have no account yet."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import MailAccount
from webmail.mail.views import mailbox
from webmail.mail.views.shell import with_person_time


@login_required
@require_GET
@with_person_time
def home(request: HttpRequest) -> HttpResponse:
    if not MailAccount.objects.filter(user=request.user).exists():
        return render(request, "mail/home.html", {"accounts": []})
    return mailbox.render_listing(request, mailbox.inboxes_listing(request.user, request.GET))
