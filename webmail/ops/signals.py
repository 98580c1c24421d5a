"""Celery signal receivers: task ids in logs, task durations in metrics, dead letters."""

from __future__ import annotations

import logging
import time
from contextvars import Token
from typing import Any

from celery.signals import task_failure, task_postrun, task_prerun, task_received

from webmail.ops import dlq, logs
from webmail.ops.metrics import TASK_SECONDS

log = logging.getLogger(__name__)

_running: dict[str, tuple[float, Token[str]]] = {}


@task_prerun.connect
def on_task_start(task_id: str = "", **kwargs: Any) -> None:
    _running[task_id] = (time.perf_counter(), logs.task_id.set(task_id))


@task_postrun.connect
def on_task_end(task_id: str = "", task: Any = None, state: str = "", **kwargs: Any) -> None:
    began = _running.pop(task_id, None)
    if began is None:
        return
    started, token = began
    TASK_SECONDS.labels(getattr(task, "name", "?"), state or "UNKNOWN").observe(time.perf_counter() - started)
    try:
        logs.task_id.reset(token)
    except ValueError:  # reset from another context (eager tasks inside a request)
        logs.task_id.set("")


# -- dead letters (webmail.ops.dlq) ----------------------------------------------------------------


def _attempt(task: Any) -> tuple[bool, int]:
    request = getattr(task, "request", None)
    return bool(getattr(request, "is_eager", False)), int(getattr(request, "retries", 0) or 0)


@task_prerun.connect
def count_task_start(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
    eager, retries = _attempt(task)
    if eager:
        return
    try:
        dlq.execution_started(task_id, retries)
    except Exception:  # bookkeeping must never stop a task
        log.warning("could not count the start of task %s", task_id, exc_info=True)


@task_postrun.connect
def clear_task_starts(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
    eager, retries = _attempt(task)
    if eager:
        return
    try:
        dlq.execution_ended(task_id, retries)
    except Exception:
        log.warning("could not clear the starts of task %s", task_id, exc_info=True)


@task_failure.connect
def dead_letter_failed_task(
    sender: Any = None,
    task_id: str = "",
    exception: BaseException | None = None,
    args: Any = None,
    kwargs: Any = None,
    einfo: Any = None,
    **extra: Any,
) -> None:
    """A task that raised without a retry to come is dead: keep it for the operator."""
    eager, _ = _attempt(sender)
    if eager or exception is None:
        return
    try:
        dlq.record_failure(sender, task_id, exception, args, kwargs, einfo)
    except Exception:
        log.exception("could not record dead letter for task %s", task_id)


@task_received.connect
def refuse_poison_task(request: Any = None, **kwargs: Any) -> None:
    """Skip (and dead-letter) a message whose executions keep killing their worker."""
    if request is None:
        return
    try:
        dlq.check_poison(request)
    except Exception:
        log.warning("could not check task %s for poison", getattr(request, "id", "?"), exc_info=True)
