"""The figures of the overview: read from the database, Redis and Celery, never written."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum
from django.db.models.functions import Length, TruncDay, TruncHour
from django.utils import timezone

from accounts.models import AccountState, MailAccount

log = logging.getLogger(__name__)

QUEUES = ("sync", "send", "push")
# kombu's Redis transport keeps a list per priority step: "<queue>", then "<queue>\x06\x16<n>".
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@dataclass
class Bar:
    label: str
    value: int
    failed: int = 0
    height: float = 0.0  # 0..100, the bar's share of the highest value
    failed_height: float = 0.0
    y_sent: float = 100.0
    y_failed: float = 100.0


@dataclass
class Series:
    bars: list[Bar] = field(default_factory=list)
    total: int = 0
    failed: int = 0


def people_figures(now: datetime) -> dict[str, int]:
    users = get_user_model().objects
    since = now - timedelta(hours=24)
    active = users.filter(Q(last_login__gte=since) | Q(sign_ins__last_seen_at__gte=since)).distinct().count()
    return {"total": users.count(), "active_24h": active, "staff": users.filter(is_staff=True).count()}


def lag_cutoff(now: datetime) -> datetime:
    """A working account whose last full sync is older than this is lagging."""
    return now - timedelta(minutes=3 * settings.WEBMAIL_SYNC_INTERVAL)


def account_states(now: datetime) -> dict[str, int]:
    """Count accounts as: fine, lagging, failing auth, failing connection, new, disabled."""
    cutoff = lag_cutoff(now)
    lagging_q = Q(state=AccountState.OK) & (
        Q(sync__isnull=True)
        | Q(sync__finished_at__isnull=True)
        | Q(sync__finished_at__lt=cutoff)
        | Q(sync__failures__gt=0)
    )
    row = MailAccount.objects.aggregate(
        total=Count("pk"),
        lagging=Count("pk", filter=lagging_q),
        ok=Count("pk", filter=Q(state=AccountState.OK)),
        auth_failed=Count("pk", filter=Q(state=AccountState.AUTH_FAILED)),
        connection_failing=Count("pk", filter=Q(state=AccountState.CONNECTION_FAILING)),
        new=Count("pk", filter=Q(state=AccountState.NEW)),
        disabled=Count("pk", filter=Q(state=AccountState.DISABLED)),
    )
    row["fine"] = row.pop("ok") - row["lagging"]
    return row


def is_lagging(account: MailAccount, now: datetime) -> bool:
    sync = getattr(account, "sync", None)
    return account.state == AccountState.OK and (
        sync is None or sync.finished_at is None or sync.finished_at < lag_cutoff(now) or sync.failures > 0
    )


def cache_figures() -> dict[str, int]:
    from webmail.mail import fulltext
    from webmail.mail.models import Message, MessageBody

    messages = Message.objects.aggregate(count=Count("pk"), size=Sum("size"))
    stored = MessageBody.objects.aggregate(bytes=Sum(Length("raw_compressed")))
    return {
        "messages": messages["count"] or 0,
        "message_bytes": messages["size"] or 0,
        "stored_bytes": stored["bytes"] or 0,
        "unindexed": fulltext.pending_total(),
    }


def outbox_model():  # noqa: ANN201
    """Return the compose app's OutgoingMessage model, or None while it does not exist."""
    try:
        from webmail.compose.models import OutgoingMessage
    except ImportError:
        return None
    names = {f.name for f in OutgoingMessage._meta.get_fields()}
    return OutgoingMessage if {"state", "sent_at", "updated_at"} <= names else None


def send_series(now: datetime, *, days: int) -> Series | None:
    """Messages sent and failed per hour (days=1) or per day: bars oldest first."""
    model = outbox_model()
    if model is None:
        return None
    hourly = days == 1
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    count = 24 if hourly else days
    tz = timezone.get_current_timezone()
    local_now = timezone.localtime(now, tz)
    end = (
        local_now.replace(minute=0, second=0, microsecond=0)
        if hourly
        else local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    ) + step
    start = end - count * step
    trunc = TruncHour if hourly else TruncDay
    sent = dict(
        model.objects.filter(state="sent", sent_at__gte=start, sent_at__lt=end)
        .annotate(slot=trunc("sent_at", tzinfo=tz))
        .values("slot")
        .annotate(n=Count("pk"))
        .values_list("slot", "n")
    )
    failed = dict(
        model.objects.filter(state="failed", updated_at__gte=start, updated_at__lt=end)
        .annotate(slot=trunc("updated_at", tzinfo=tz))
        .values("slot")
        .annotate(n=Count("pk"))
        .values_list("slot", "n")
    )
    series = Series()
    for i in range(count):
        slot = start + i * step
        label = f"{slot:%H}:00" if hourly else f"{slot:%d %b}"
        bar = Bar(label=label, value=sent.get(slot, 0), failed=failed.get(slot, 0))
        series.bars.append(bar)
        series.total += bar.value
        series.failed += bar.failed
    top = max([b.value + b.failed for b in series.bars] + [1])
    for bar in series.bars:
        bar.height = round(100 * bar.value / top, 1)
        bar.failed_height = round(100 * bar.failed / top, 1)
        bar.y_sent = round(100 - bar.height, 1)
        bar.y_failed = round(100 - bar.height - bar.failed_height, 1)
    return series


def outbox_states() -> dict[str, int] | None:
    model = outbox_model()
    if model is None:
        return None
    return dict(model.objects.exclude(state="draft").values_list("state").annotate(n=Count("pk")))


def queue_depths() -> dict[str, int] | None:
    """Messages waiting in each Celery queue (Redis LLEN), or None when Redis cannot be reached."""
    from webmail.mail.locks import redis_client

    try:
        client = redis_client()
        pipe = client.pipeline()
        for queue in QUEUES:
            for suffix in PRIORITY_SUFFIXES:
                pipe.llen(queue + suffix)
        lengths = pipe.execute()
    except Exception as error:  # noqa: BLE001  the dashboard shows "unavailable" instead
        log.warning("queue depths unavailable: %s", error)
        return None
    per = len(PRIORITY_SUFFIXES)
    return {queue: sum(lengths[i * per : (i + 1) * per]) for i, queue in enumerate(QUEUES)}


def worker_heartbeats() -> list[str] | None:
    """Names of the Celery workers that answered a ping within a second, or None on error."""
    from webmail.celery import app

    try:
        replies = app.control.inspect(timeout=1).ping() or {}
    except Exception as error:  # noqa: BLE001
        log.warning("worker ping failed: %s", error)
        return None
    return sorted(replies)


@dataclass
class WatcherInfo:
    name: str
    seconds_ago: int
    accounts: int


def watcher_leases() -> dict[str, object] | None:
    """Watchers with their last heartbeat and the number of accounts each holds by lease."""
    from webmail.mail.locks import redis_client
    from webmail.mail.watcher import WATCHERS_KEY, lease_key

    try:
        client = redis_client()
        prefix = lease_key(0)[:-1]
        holders: dict[str, int] = {}
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for holder in client.mget(keys) if keys else []:
            if holder is not None:
                name = holder.decode()
                holders[name] = holders.get(name, 0) + 1
        beats = {k.decode(): int(v) for k, v in client.hgetall(WATCHERS_KEY).items()}
    except Exception as error:  # noqa: BLE001
        log.warning("watcher leases unavailable: %s", error)
        return None
    now = int(time.time())
    names = sorted(set(beats) | set(holders))
    watchers = [
        WatcherInfo(name=n, seconds_ago=now - beats[n] if n in beats else -1, accounts=holders.get(n, 0))
        for n in names
    ]
    return {"leases": sum(holders.values()), "watchers": watchers}


def account_leases(account_id: int) -> dict[str, str | None]:
    """The watcher holding ACCOUNT_ID's lease and whether a sync lock is held (None when unknown)."""
    from webmail.mail.locks import lock_key, redis_client
    from webmail.mail.watcher import lease_key

    try:
        client = redis_client()
        lease, lock = client.mget([lease_key(account_id), lock_key(account_id)])
    except Exception:  # noqa: BLE001
        return {"lease": None, "lock": None, "error": "unavailable"}
    return {
        "lease": lease.decode() if lease else "",
        "lock": "held" if lock else "",
        "error": None,
    }
