"""`manage.py healthcheck`: the web side (database, Redis) and workers (a Celery ping), by exit code."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from webmail.ops.management.commands import healthcheck


def run(*args: str) -> tuple[int, str]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("healthcheck", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


@pytest.mark.django_db
def test_it_reports_the_web_side_healthy_when_database_and_redis_answer():
    code, out = run()
    assert code == 0 and "ok" in out


@pytest.mark.django_db
def test_it_exits_1_when_redis_does_not_answer(monkeypatch):
    class Down:
        def ping(self):
            raise ConnectionError("refused")

    monkeypatch.setattr(healthcheck, "redis_client", lambda: Down())
    code, out = run()
    assert code == 1 and "redis" in out


def test_it_answers_ok_when_the_worker_replies_to_a_ping(celery_worker_thread):
    # A worker thread that has just started may miss the first broadcast: ask up to three times.
    for _ in range(3):
        code, out = run("--worker", "--node", celery_worker_thread.hostname, "--timeout", "5")
        if code == 0:
            break
    assert code == 0, out
    assert celery_worker_thread.hostname in out


def test_it_exits_1_when_the_named_worker_does_not_reply(celery_worker_thread):
    code, out = run("--worker", "--node", "nobody@nowhere", "--timeout", "0.5")
    assert code == 1 and "nobody@nowhere" in out


def test_it_exits_1_when_the_broker_is_unreachable(monkeypatch):
    def refuse(timeout, nodes):
        raise ConnectionError("broker down")

    monkeypatch.setattr(healthcheck, "ping_workers", refuse)
    code, out = run("--worker", "--quiet")
    assert code == 1 and out == ""
