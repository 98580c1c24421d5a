"""The overview: people, accounts by state, the cache, sending, queues, workers and watchers."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from webmail.dashboard import figures
from webmail.dashboard.permissions import staff_required


@staff_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    context = {
        "people": figures.people_figures(now),
        "states": figures.account_states(now),
        "cache": figures.cache_figures(),
        "sent_24h": figures.send_series(now, days=1),
        "sent_30d": figures.send_series(now, days=30),
        "outbox": figures.outbox_states(),
    }
    return render(request, "dashboard/overview.html", context)


@staff_required
@require_GET
def system(request: HttpRequest) -> HttpResponse:
    """The live part (queues, workers, watchers), loaded and refreshed by htmx."""
    context = {
        "queues": figures.queue_depths(),
        "workers": figures.worker_heartbeats(),
        "watch": figures.watcher_leases(),
    }
    return render(request, "dashboard/_system.html", context)
