"""Take one's mail away (mbox export) and delete one's account with everything in it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from accounts import people, signals
from accounts.export import stream_export
from accounts.forms import DeleteAccountForm
from accounts.models import AuditEvent


@login_required
def data(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/data.html", {"form": DeleteAccountForm(request.user)})


@login_required
@require_POST
def export_mail(request: HttpRequest) -> StreamingHttpResponse:
    signals.record(AuditEvent.Kind.DATA_EXPORTED, request.user, request)
    name = f"mail-{request.user.get_username()}-{timezone.now():%Y%m%d}.zip"
    response = StreamingHttpResponse(stream_export(request.user), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@sensitive_post_parameters("password")
def delete_account(request: HttpRequest) -> HttpResponse:
    form = DeleteAccountForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        people.do_delete_person(request.user, request)
        messages.success(request, _("Your account and all of its mail were deleted."))
        return redirect("login")
    return render(
        request, "accounts/data.html", {"form": form}, status=400 if request.method == "POST" else 200
    )
