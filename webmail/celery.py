"""The one Celery app: queues named for their work (sync, send, push) and the beat schedule."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")

app = Celery("webmail")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # One direct exchange per queue, so a task routed to one queue never lands in another.
    task_queues=[
        Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ("sync", "send", "push")
    ],
    task_default_queue="sync",
    # Tasks are named "<queue>.<what>"; the prefix picks the queue.
    task_routes={
        f"{name}.*": {"queue": name, "exchange": name, "routing_key": name}
        for name in ("sync", "send", "push")
    },
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_time_limit=30 * 60,
    task_soft_time_limit=25 * 60,
    broker_transport_options={"visibility_timeout": 60 * 60},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    beat_schedule={
        "sync-due-accounts": {"task": "sync.due", "schedule": 60.0, "options": {"expires": 55}},
        # Send-later messages, and any whose task was lost (a Redis restart): the outbox is the truth.
        "send-due": {"task": "send.due", "schedule": 30.0, "options": {"expires": 25}},
        # Full-text indexing is started by each sync that stores mail; this catches a lost start.
        "index-fulltext": {"task": "sync.index", "schedule": 60.0, "options": {"expires": 55}},
        "cleanup": {"task": "sync.cleanup", "schedule": 3600.0, "options": {"expires": 3000}},
    },
)
app.autodiscover_tasks()
