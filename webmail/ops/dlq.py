"""Dead letters: tasks that will not run again by themselves, kept in Redis for an operator.

Two ways a task ends up here:
- it failed for good: it raised, and no retry is coming (Celery's task_failure is sent only then;
  a task that calls self.retry() is not dead until its max_retries are spent);
- it is a poison message: with acks_late and reject_on_worker_lost a task that kills its worker (out
  of memory, a crash in C code) is delivered again and again. Every start of an execution is
  counted per (task id, retry number) and the count is cleared when the execution ends; a message
  received with MAX_DELIVERIES unfinished starts behind it is revoked in that worker (so it is
  acknowledged and skipped) and recorded here instead.

`manage.py deadletters` lists them and sends them again (as new tasks) or drops them.
"""

from __future__ import annotations

import json
import logging
import time
import traceback as tb
from typing import Any

from webmail.mail.locks import redis_client

log = logging.getLogger(__name__)

KEY = "webmail:dead-letters"
MAX_ENTRIES = 1000  # the list is trimmed to the newest ones
MAX_DELIVERIES = 5  # unfinished executions of one attempt before it counts as poison
STARTS_TTL = 24 * 3600


def starts_key(task_id: str, retries: int) -> str:
    return f"webmail:task-starts:{task_id}:{int(retries)}"


def record(entry: dict[str, Any]) -> dict[str, Any]:
    """Push ENTRY (task id, name, args, kwargs, reason ...) onto the dead-letter list; return it."""
    entry = {"failed_at": time.time(), **entry}
    client = redis_client()
    pipe = client.pipeline()
    pipe.lpush(KEY, json.dumps(entry, default=repr, sort_keys=True))
    pipe.ltrim(KEY, 0, MAX_ENTRIES - 1)
    pipe.execute()
    log.error(
        "dead letter: task %s %s (%s): %s",
        entry.get("task"),
        entry.get("id"),
        entry.get("reason"),
        entry.get("error"),
    )
    return entry


def record_failure(
    task: Any, task_id: str, exception: BaseException, args: Any, kwargs: Any, einfo: Any
) -> None:
    """Record a task that failed for good (the task_failure signal)."""
    request = getattr(task, "request", None)
    delivery = getattr(request, "delivery_info", None) or {}
    text = str(getattr(einfo, "traceback", "") or "") or "".join(tb.format_exception(exception))
    record(
        {
            "id": task_id,
            "task": getattr(task, "name", "?"),
            "args": list(args or []),
            "kwargs": dict(kwargs or {}),
            "queue": delivery.get("routing_key") or "",
            "retries": getattr(request, "retries", 0) or 0,
            "worker": getattr(request, "hostname", "") or "",
            "reason": "failed",
            "exception": type(exception).__name__,
            "error": str(exception)[:1000],
            "traceback": text[-4000:],
        }
    )


def execution_started(task_id: str, retries: int) -> int:
    """Count one more start of this attempt; return the count (the task_prerun signal)."""
    client = redis_client()
    pipe = client.pipeline()
    pipe.incr(starts_key(task_id, retries))
    pipe.expire(starts_key(task_id, retries), STARTS_TTL)
    return int(pipe.execute()[0])


def execution_ended(task_id: str, retries: int) -> None:
    """The attempt finished (success, failure or retry): forget its starts (the task_postrun signal)."""
    redis_client().delete(starts_key(task_id, retries))


def unfinished_starts(task_id: str, retries: int) -> int:
    value = redis_client().get(starts_key(task_id, retries))
    return int(value or 0)


def check_poison(request: Any) -> bool:
    """On receipt of a task message: revoke it here and dead-letter it if it keeps killing workers."""
    retries = int((getattr(request, "request_dict", None) or {}).get("retries", 0) or 0)
    starts = unfinished_starts(request.id, retries)
    if starts < MAX_DELIVERIES:
        return False
    from celery.worker import state as worker_state

    # The worker checks its revoked set before running a request: the message is acked and skipped.
    worker_state.revoked.add(request.id)
    record(
        {
            "id": request.id,
            "task": request.name,
            "args": list(request.args or []),
            "kwargs": dict(request.kwargs or {}),
            "queue": (getattr(request, "delivery_info", None) or {}).get("routing_key") or "",
            "retries": retries,
            "worker": getattr(request, "hostname", "") or "",
            "reason": "poison",
            "exception": "WorkerLostError",
            "error": f"started {starts} times without finishing (its worker died each time)",
            "traceback": "",
        }
    )
    execution_ended(request.id, retries)
    return True


def entries(limit: int = MAX_ENTRIES) -> list[dict[str, Any]]:
    """Return dead letters, newest first, each with its raw JSON under "_raw"."""
    out = []
    for raw in redis_client().lrange(KEY, 0, limit - 1):
        try:
            entry = json.loads(raw)
        except ValueError:
            entry = {"id": "?", "task": "?", "error": "unreadable entry"}
        entry["_raw"] = raw
        out.append(entry)
    return out


def remove(entry: dict[str, Any]) -> bool:
    return bool(redis_client().lrem(KEY, 1, entry["_raw"]))


def requeue(entry: dict[str, Any]) -> str:
    """Send the dead task again as a new task (same name, args and kwargs); drop the entry; return its id."""
    from webmail.celery import app

    result = app.send_task(entry["task"], args=entry.get("args") or [], kwargs=entry.get("kwargs") or {})
    remove(entry)
    return str(result.id)


def purge() -> int:
    """Drop every dead letter; return how many there were."""
    client = redis_client()
    pipe = client.pipeline()
    pipe.llen(KEY)
    pipe.delete(KEY)
    return int(pipe.execute()[0])
