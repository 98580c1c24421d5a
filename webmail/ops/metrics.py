"""Prometheus metrics: request and task figures per process, system figures read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "webmail_http_requests_total",
    "HTTP requests by view and status",
    ["method", "view", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "webmail_http_request_seconds",
    "HTTP request duration by view",
    ["view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
TASK_SECONDS = Histogram(
    "webmail_task_seconds",
    "Celery task duration by task and outcome",
    ["task", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)


def observe_request(method: str, view: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, view, str(status)).inc()
    REQUEST_SECONDS.labels(view).observe(seconds)


class SystemCollector(Collector):
    """Figures every process can read from the database and Redis when scraped."""

    def describe(self) -> list:
        return []  # read nothing at registration (the database may not exist yet)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count
        from django.utils import timezone

        from accounts.models import MailAccount
        from webmail.mail.locks import redis_client
        from webmail.mail.models import SyncState
        from webmail.mail.watcher import WATCHERS_KEY

        states = GaugeMetricFamily("webmail_mail_accounts", "Mail accounts by state", labels=["state"])
        for row in MailAccount.objects.values("state").annotate(n=Count("id")):
            states.add_metric([row["state"]], row["n"])
        yield states

        lag = GaugeMetricFamily(
            "webmail_sync_lag_seconds", "Seconds since each account's last complete sync", labels=["account"]
        )
        now = timezone.now()
        for account_id, finished in SyncState.objects.exclude(finished_at=None).values_list(
            "pk", "finished_at"
        ):
            lag.add_metric([str(account_id)], (now - finished).total_seconds())
        yield lag

        from webmail.mail import fulltext

        pending = GaugeMetricFamily(
            "webmail_fulltext_pending", "Stored messages waiting to be added to the full-text index"
        )
        pending.add_metric([], fulltext.pending_total())
        yield pending

        client = redis_client()
        queues = GaugeMetricFamily("webmail_queue_depth", "Tasks waiting per Celery queue", labels=["queue"])
        for name in ("sync", "send", "push"):
            queues.add_metric([name], client.llen(name))
        yield queues

        watchers = GaugeMetricFamily(
            "webmail_watchers", "Watcher processes with a heartbeat in the last minute"
        )
        leases = GaugeMetricFamily("webmail_watched_accounts", "Accounts held by an IDLE watcher lease")
        import time

        beats = client.hgetall(WATCHERS_KEY)
        watchers.add_metric([], sum(1 for v in beats.values() if time.time() - int(v) < 60))
        leases.add_metric([], sum(1 for _ in client.scan_iter("webmail:watch:lease:*", count=1000)))
        yield watchers
        yield leases


REGISTRY.register(SystemCollector())


class DeadLetterCollector(Collector):
    """How many tasks failed for good and wait in the dead-letter list."""

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from webmail.mail.locks import redis_client

        gauge = GaugeMetricFamily(
            "webmail_dead_letters", "Tasks that failed for good (manage.py deadletters)"
        )
        gauge.add_metric([], redis_client().llen("webmail:dead-letters"))
        yield gauge


REGISTRY.register(DeadLetterCollector())
