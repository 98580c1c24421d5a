"""Tasks go to the queue their name says, and only to that one."""

from __future__ import annotations

import pytest

from webmail.celery import app


@pytest.mark.parametrize("queue", ["sync", "send", "push"])
def test_task_names_pick_their_own_queue_and_exchange(queue):
    route = app.amqp.router.route({}, f"{queue}.something")
    assert route["queue"].name == queue
    assert route["exchange"] == queue and route["routing_key"] == queue


def test_queues_do_not_share_an_exchange_binding():
    bindings = {(q.exchange.name, q.routing_key) for q in app.conf.task_queues}
    assert len(bindings) == len(app.conf.task_queues) == 3


def test_beat_schedules_the_periodic_sync():
    assert any(entry["task"] == "sync.due" for entry in app.conf.beat_schedule.values())
