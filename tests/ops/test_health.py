"""Health and metrics endpoints."""

from __future__ import annotations

import json
import logging

import pytest
from django.urls import reverse

from webmail.ops.logs import JsonFormatter, request_id

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_redis(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_is_503_when_redis_is_gone(client, settings, monkeypatch):
    from webmail.ops import views

    class Broken:
        def ping(self):
            raise ConnectionError("down")

    monkeypatch.setattr(views, "redis_client", lambda: Broken())
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["redis"].startswith("error")


def test_metrics_are_served_to_loopback_and_refused_elsewhere(client, alice, operator):
    client.get(reverse("login"))
    body = client.get(reverse("metrics")).content.decode()
    assert "webmail_http_requests_total" in body
    assert "webmail_queue_depth" in body and "webmail_mail_accounts" in body
    assert client.get(reverse("metrics"), REMOTE_ADDR="203.0.113.9").status_code == 403
    client.force_login(operator)
    assert client.get(reverse("metrics"), REMOTE_ADDR="203.0.113.9").status_code == 200


def test_responses_carry_a_request_id_and_keep_a_safe_incoming_one(client):
    assert len(client.get(reverse("login"))["X-Request-ID"]) == 16
    assert client.get(reverse("login"), HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    assert client.get(reverse("login"), HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"] != "bad id\n"


def test_json_log_lines_carry_the_request_id():
    token = request_id.set("r-1")
    try:
        record = logging.makeLogRecord(
            {"name": "x", "levelname": "INFO", "msg": "hello %s", "args": ("you",)}
        )
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["message"] == "hello you" and line["request_id"] == "r-1" and line["level"] == "INFO"
