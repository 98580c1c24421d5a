"""Health check for process managers and containers: exit 0 when healthy, 1 otherwise.

`healthcheck` checks what a web process needs (the database and Redis answer), like /healthz.
`healthcheck --worker` asks Celery workers for a ping through the broker and waits at most
--timeout seconds; with --node it wants that worker (e.g. sync-1@host) to answer, else any.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection

from webmail.mail.locks import redis_client


def web_problems() -> list[str]:
    """Return what is not reachable among the database and Redis (empty when both answer)."""
    problems = []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not healthy"
        problems.append(f"database: {type(exc).__name__}: {exc}")
    try:
        redis_client().ping()
    except Exception as exc:
        problems.append(f"redis: {type(exc).__name__}: {exc}")
    return problems


def ping_workers(timeout: float, nodes: list[str] | None = None) -> dict[str, Any]:
    """Ping Celery workers (only NODES when given); return {node: reply} of those that answered."""
    from webmail.celery import app

    replies = app.control.ping(destination=nodes or None, timeout=timeout)
    answered: dict[str, Any] = {}
    for reply in replies:
        answered.update(reply)
    return answered


class Command(BaseCommand):
    help = "Exit 0 when healthy, 1 otherwise: the database and Redis, or (--worker) a Celery ping."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--worker", action="store_true", help="check Celery workers instead of the web side"
        )
        parser.add_argument("--node", action="append", default=[], help="worker node name that must answer")
        parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for ping replies")
        parser.add_argument("--quiet", action="store_true", help="print nothing; only the exit code")

    def handle(self, *args: Any, **opts: Any) -> None:
        say = (lambda text: None) if opts["quiet"] else self.stdout.write
        if not opts["worker"]:
            problems = web_problems()
            for problem in problems:
                say(f"unhealthy {problem}")
            if problems:
                sys.exit(1)
            say("ok: database and redis")
            return
        try:
            answered = ping_workers(opts["timeout"], opts["node"])
        except Exception as exc:  # the broker itself is unreachable
            say(f"unhealthy: cannot reach the broker: {type(exc).__name__}: {exc}")
            sys.exit(1)
        missing = [node for node in opts["node"] if node not in answered]
        if not answered or missing:
            say(
                f"unhealthy: no ping reply within {opts['timeout']:g}s from {', '.join(missing) or 'any worker'}"
            )
            sys.exit(1)
        say(f"ok: {', '.join(sorted(answered))}")
