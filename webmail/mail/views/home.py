"""The start page: the person's mail, or a first step when they have no account yet."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import MailAccount


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    accounts = MailAccount.objects.filter(user=request.user).order_by("name", "id")
    return render(request, "mail/home.html", {"accounts": accounts})
