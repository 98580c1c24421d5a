"""Attachments of a draft: upload (one file per request, for progress), remove."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.http import require_POST

from webmail.compose.access import access_attachment, access_outgoing
from webmail.compose.actions import drafts


def _json(att) -> dict:  # type: ignore[no-untyped-def]
    return {
        "id": att.pk,
        "filename": att.filename,
        "size": filesizeformat(att.size),
        "content_type": att.content_type,
        "remove_url": reverse("compose_attachment_remove", args=[att.message_id, att.pk]),
    }


@login_required
@require_POST
def compose_attach(request: HttpRequest, pk: int) -> HttpResponse:
    outgoing = access_outgoing(request.user, pk)
    uploads = request.FILES.getlist("file") or request.FILES.getlist("files")
    if not uploads:
        return JsonResponse({"error": "Choose a file to attach."}, status=400)
    added, errors = [], []
    for upload in uploads:
        try:
            added.append(
                drafts.do_add_attachment(
                    outgoing,
                    upload.name or "attachment",
                    upload.content_type or "",
                    upload.read(),
                    per_file=settings.WEBMAIL_MAX_ATTACHMENT_BYTES,
                    total=settings.WEBMAIL_MAX_MESSAGE_BYTES,
                )
            )
        except drafts.ComposeRefused as exc:
            errors.append(str(exc))
    status = 400 if errors and not added else 200
    return JsonResponse({"attachments": [_json(a) for a in added], "errors": errors}, status=status)


@login_required
@require_POST
def compose_attachment_remove(request: HttpRequest, pk: int, attachment_id: int) -> HttpResponse:
    attachment = access_attachment(request.user, pk, attachment_id)
    try:
        drafts.do_remove_attachment(attachment)
    except drafts.ComposeRefused as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"removed": attachment_id})
    return redirect("compose_edit", pk=pk)
