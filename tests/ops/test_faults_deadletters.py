"""Dead letters: a task that keeps failing, or keeps killing its worker, is kept for the operator."""

from __future__ import annotations

import secrets
import time
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import call_command

from webmail.celery import app
from webmail.ops import dlq


@app.task(name="push.test_dead_letter_always_fails", bind=True, max_retries=1, default_retry_delay=0)
def always_fails(self, marker: str) -> None:
    raise self.retry(exc=RuntimeError(f"broken on purpose {marker}"), countdown=0)


def entries_for(marker: str) -> list[dict]:
    return [e for e in dlq.entries() if marker in (e.get("args") or [])]


def wait_for_entries(marker: str, count: int, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = entries_for(marker)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no dead letter for {marker} within {timeout}s")


@pytest.fixture
def marker():
    value = f"m-{secrets.token_hex(6)}"
    yield value
    for entry in entries_for(value):
        dlq.remove(entry)


def test_a_task_that_fails_after_its_retries_is_dead_lettered_and_can_be_requeued(
    celery_worker_thread, marker
):
    result = always_fails.delay(marker)
    (entry,) = wait_for_entries(marker, 1)
    assert entry["id"] == result.id
    assert entry["task"] == "push.test_dead_letter_always_fails"
    assert entry["reason"] == "failed" and entry["retries"] == 1
    assert "broken on purpose" in entry["error"] and entry["exception"] == "RuntimeError"

    out = StringIO()
    call_command("deadletters", stdout=out)
    assert result.id in out.getvalue()

    out = StringIO()
    call_command("deadletters", "--requeue", result.id, stdout=out)
    assert "requeued" in out.getvalue()
    # Sent again as a new task, which fails again and comes back under its own id.
    found = wait_for_entries(marker, 1)
    assert [e["id"] for e in found] != [result.id]


def test_a_task_that_is_retried_is_not_dead_until_its_retries_are_spent(celery_worker_thread, marker):
    always_fails.delay(marker)
    wait_for_entries(marker, 1)
    time.sleep(0.5)
    assert len(entries_for(marker)) == 1  # the first failure (retried) left no entry


def test_a_message_whose_executions_keep_dying_is_revoked_and_dead_lettered(marker):
    from celery.worker import state as worker_state

    task_id = f"poison-{marker}"
    request = SimpleNamespace(
        id=task_id,
        name="sync.account",
        args=[marker],
        kwargs={},
        request_dict={"retries": 0},
        delivery_info={"routing_key": "sync"},
        hostname="sync-1@test",
    )
    for _ in range(dlq.MAX_DELIVERIES - 1):
        dlq.execution_started(task_id, 0)
    assert not dlq.check_poison(request)
    assert task_id not in worker_state.revoked

    dlq.execution_started(task_id, 0)  # the fifth start that never finished
    assert dlq.check_poison(request)
    assert task_id in worker_state.revoked
    (entry,) = entries_for(marker)
    assert entry["reason"] == "poison" and entry["queue"] == "sync"
    assert dlq.unfinished_starts(task_id, 0) == 0


def test_a_finished_execution_clears_its_start_count(marker):
    task_id = f"fine-{marker}"
    for _ in range(dlq.MAX_DELIVERIES + 1):
        dlq.execution_started(task_id, 0)
    dlq.execution_ended(task_id, 0)
    assert dlq.unfinished_starts(task_id, 0) == 0


def test_drop_removes_one_entry_and_json_lists_the_rest(marker):
    dlq.record(
        {"id": f"a-{marker}", "task": "sync.account", "args": [marker], "kwargs": {}, "reason": "failed"}
    )
    dlq.record(
        {"id": f"b-{marker}", "task": "sync.account", "args": [marker], "kwargs": {}, "reason": "failed"}
    )
    call_command("deadletters", "--drop", f"a-{marker}", stdout=StringIO())
    assert [e["id"] for e in entries_for(marker)] == [f"b-{marker}"]
    out = StringIO()
    call_command("deadletters", "--json", stdout=out)
    assert f"b-{marker}" in out.getvalue()


def test_an_unknown_id_is_an_error():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("deadletters", "--requeue", "no-such-id", stdout=StringIO())
