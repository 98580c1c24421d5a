"""Delivery-to-DOM latency: from the SMTP 250 to the new row in an open inbox page (part of bench/push.py)."""

from __future__ import annotations

import smtplib
import statistics
import threading
import time
import uuid

PASSWORD = "bench-password-123"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _serve_asgi() -> str:
    import socket

    import uvicorn

    from webmail.asgi import application

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}"


def _message(subject: str) -> bytes:
    return (
        f"From: Bench <bench@example.org>\r\nTo: reader@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\n\r\nLatency probe.\r\n"
    ).encode()


def measure_delivery_to_dom(stack, deliveries: int) -> dict[str, dict[str, object]]:
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from playwright.sync_api import sync_playwright

    from accounts.models import Identity, MailAccount
    from webmail.celery import app
    from webmail.mail.actions.sync import do_sync_account
    from webmail.mail.models import Folder
    from webmail.mail.watcher import Watcher

    settings.WEBMAIL_EXTRA_CA_FILE = stack.ca_file
    box = stack.add_user(f"reader-{uuid.uuid4().hex[:6]}@example.test", "pw")
    user = get_user_model().objects.create_user("reader", password=PASSWORD)
    account = MailAccount(
        user=user,
        name="Bench",
        email=box.address,
        incoming_host="127.0.0.1",
        incoming_port=stack.imaps_port,
        incoming_security="tls",
        incoming_username=box.address,
        smtp_host="127.0.0.1",
        smtp_port=stack.submission_port,
        smtp_security="starttls",
        state="ok",
    )
    account.set_incoming_password(box.password)
    account.save()
    Identity.objects.create(account=account, email=box.address, is_default=True)
    do_sync_account(account.pk)
    inbox = Folder.objects.get(account=account, name="INBOX")

    base = _serve_asgi()
    watcher = Watcher(name="bench-dom")
    threading.Thread(target=watcher.run_forever, daemon=True).start()
    latencies: list[float] = []
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING"):
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"{base}/accounts/login/")
            page.get_by_label("Username").fill("reader")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.goto(f"{base}/mail/folder/{inbox.pk}/")
            page.wait_for_selector("#live-status[data-state=live]", timeout=15000)
            # Wait until the watcher holds the account and sits in IDLE.
            deadline = time.monotonic() + 30
            while account.pk not in watcher.accounts_held() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(2)
            page.evaluate(
                """() => {
                    window.__seen = {};
                    new MutationObserver(() => {
                      for (const el of document.querySelectorAll('#list-pane .subject, #list-pane li')) {
                        const m = el.textContent.match(/Probe [0-9a-f]{8}/);
                        if (m && !window.__seen[m[0]]) window.__seen[m[0]] = Date.now();
                      }
                    }).observe(document.body, {subtree: true, childList: true, characterData: true});
                }"""
            )
            for _ in range(deliveries):
                subject = f"Probe {uuid.uuid4().hex[:8]}"
                with smtplib.SMTP("127.0.0.1", stack.mx_port, timeout=10) as smtp:
                    smtp.sendmail("bench@example.org", [box.address], _message(subject))
                    sent_ms = time.time() * 1000  # sendmail returned: the server's 250 to DATA
                page.wait_for_function(f"() => window.__seen['{subject}']", timeout=20000)
                shown_ms = page.evaluate(f"() => window.__seen['{subject}']")
                latencies.append(shown_ms - sent_ms)
                time.sleep(0.3)
            browser.close()
    watcher.stop()
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    print(
        f"delivery to DOM over {len(latencies)} deliveries: p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {latencies[-1]:.0f} ms"
    )
    return {
        "delivery_to_dom_p50_ms": {"value": round(p50, 1), "unit": "ms"},
        "delivery_to_dom_p95_ms": {"value": round(p95, 1), "unit": "ms"},
    }
