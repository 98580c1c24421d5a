"""Per-folder settings the person changes from the folder's page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from webmail.mail.access import access_folder
from webmail.mail.actions.folders import do_set_notify


@login_required
@require_POST
def toggle_notify(request: HttpRequest, folder_id: int) -> HttpResponse:
    """Turn push notifications for new mail in this folder on or off."""
    folder = access_folder(request.user, folder_id)
    do_set_notify(folder, request.POST.get("notify") == "on")
    if request.htmx:
        return render(request, "mail/_notify_toggle.jinja", {"folder": folder}, using="jinja2")
    return redirect("mail_folder", folder_id=folder.pk)
