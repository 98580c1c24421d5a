"""Celery signal receivers: task ids in logs and task durations in metrics."""

from __future__ import annotations

import time
from contextvars import Token
from typing import Any

from celery.signals import task_postrun, task_prerun

from webmail.ops import logs
from webmail.ops.metrics import TASK_SECONDS

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
