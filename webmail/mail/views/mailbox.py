"""The mailbox pages: a folder, all inboxes and search results, in the three-pane shell."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from webmail.mail.access import access_folder
from webmail.mail.views.shell import (
    Listing,
    folder_listing,
    folder_tree,
    inboxes_listing,
    search_listing,
    with_person_time,
)

__all__ = ["folder", "inboxes", "inboxes_listing", "render_listing", "search"]


def shell_context(request: HttpRequest, listing: Listing, **extra: Any) -> dict[str, Any]:
    return {"listing": listing, "trees": folder_tree(request.user), **extra}


def render_listing(request: HttpRequest, listing: Listing, **extra: Any) -> HttpResponse:
    """Render the whole page, or only the pane htmx asked for (the list, or the list with the folders)."""
    context = shell_context(request, listing, **extra)
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        if htmx.target == "list-pane":
            return render(request, "mail/_list_swap.jinja", context, using="jinja2")
        if htmx.target == "mail":
            return render(request, "mail/_shell.jinja", context, using="jinja2")
    return render(request, "mail/mailbox.html", context)


@login_required
@require_GET
@with_person_time
def folder(request: HttpRequest, folder_id: int) -> HttpResponse:
    return render_listing(request, folder_listing(access_folder(request.user, folder_id), request.GET))


@login_required
@require_GET
@with_person_time
def inboxes(request: HttpRequest) -> HttpResponse:
    return render_listing(request, inboxes_listing(request.user, request.GET))


@login_required
@require_GET
@with_person_time
def search(request: HttpRequest) -> HttpResponse:
    scope = access_folder(request.user, request.GET["folder"]) if request.GET.get("folder") else None
    return render_listing(request, search_listing(request.user, request.GET, scope))
