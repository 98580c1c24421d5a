"""Benchmark sending: Send (the action) to the SMTP server's 250, outbox throughput, and a raw smtplib loop.

Run as root: `.venv/bin/python bench/send.py [--messages 200]`. It starts its own Dovecot + Postfix
(tests.mailstack.stack.MailStack) in a temp directory and a SQLite database in a temp var dir, and
writes bench/results/send.json. The send worker's step runs in this process (outbox.do_deliver, what
the `send.deliver` task calls), so the figures are the outbox's own cost (claim, submit over
STARTTLS+AUTH, record, file the Sent copy in the cache) without a broker hop. The IMAP write-back
tasks it enqueues (APPEND to Sent, removing the draft copy) go to a private Redis and are not run:
in production they run on the sync queue, in parallel with sending.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import smtplib
import ssl
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    n = args.messages

    var = tempfile.mkdtemp(prefix="bench-send-var-")
    os.environ.update(
        WEBMAIL_VAR_DIR=var,
        DJANGO_SETTINGS_MODULE="webmail.settings",
        WEBMAIL_UNDO_SEND_SECONDS="0",
        WEBMAIL_SEND_RATE_MESSAGES_PER_HOUR=str(10 * n),
        WEBMAIL_SEND_RATE_RECIPIENTS_PER_HOUR=str(10 * n),
        WEBMAIL_ALLOWED_MAIL_HOSTS="127.0.0.1",
        LOG_LEVEL="ERROR",
    )
    from tests.mailstack.stack import MailStack

    state = Path(tempfile.mkdtemp(prefix="mailstack-bench-", dir="/tmp"))
    state.chmod(0o755)
    stack = MailStack(state)
    stack.start()
    from webmail.ops import embedded_redis

    redis_sock = Path(var) / "redis" / "redis.sock"
    redis_proc = embedded_redis.start(redis_sock)
    os.environ["REDIS_URL"] = f"unix://{redis_sock}"
    try:
        os.environ["WEBMAIL_EXTRA_CA_FILE"] = stack.ca_file
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from accounts.models import Identity, MailAccount
        from webmail.compose import submission
        from webmail.compose.actions import drafts, outbox

        sender = stack.add_user("sender@example.test", "pw-sender")
        rcpt = stack.add_user("rcpt@example.test", "pw-rcpt")
        user = get_user_model().objects.create_user("bench", "bench@example.test", "x")
        account = MailAccount(
            user=user,
            name="Bench",
            email=sender.address,
            incoming_host="127.0.0.1",
            incoming_port=stack.imaps_port,
            incoming_security="tls",
            incoming_username=sender.address,
            smtp_host="127.0.0.1",
            smtp_port=stack.submission_port,
            smtp_security="starttls",
            smtp_username=sender.address,
        )
        account.set_incoming_password(sender.password)
        account.save()
        identity = Identity.objects.create(
            account=account, email=sender.address, display_name="Bench", is_default=True
        )

        replied: dict[int, float] = {}
        real_submit = submission.submit

        def timed_submit(*a, **kw):  # type: ignore[no-untyped-def]
            result = real_submit(*a, **kw)
            replied[len(replied)] = time.perf_counter()
            return result

        submission.submit = timed_submit
        body = "Benchmark message body line.\n" * 60

        def draft(i: int):  # type: ignore[no-untyped-def]
            o = drafts.do_create(user, identity)
            drafts.do_update_draft(
                o, identity, {"to": rcpt.address, "subject": f"Bench {i}", "body_text": body}
            )
            return o

        def one(o) -> float:  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            outbox.do_queue_send(o, delay=0)
            assert outbox.do_deliver(o.pk) == "sent"  # what the send.deliver task does
            return (replied[len(replied) - 1] - start) * 1000

        for i in range(5):  # warm up connections, caches, imports
            one(draft(-i))
        latencies = [one(draft(i)) for i in range(50)]
        prepared = [draft(1000 + i) for i in range(n)]  # the person's part, before pressing Send
        t0 = time.perf_counter()
        for o in prepared:
            one(o)
        queue_rate = n / (time.perf_counter() - t0)

        from webmail.compose.models import OutgoingMessage

        raws = [bytes(r) for r in OutgoingMessage.objects.order_by("-id").values_list("raw", flat=True)[:n]]
        ctx = ssl.create_default_context(cafile=stack.ca_file)
        t0 = time.perf_counter()
        for raw in raws:  # the same work per message: connect, STARTTLS, AUTH, one transaction
            with smtplib.SMTP("127.0.0.1", stack.submission_port, timeout=20) as s:
                s.starttls(context=ctx)
                s.login(sender.address, sender.password)
                s.sendmail(sender.address, [rcpt.address], raw)
        raw_rate = len(raws) / (time.perf_counter() - t0)
        latencies.sort()
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        result = {
            "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, {platform.python_implementation()} {platform.python_version()}",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": ".venv/bin/python bench/send.py" + (f" --messages {n}" if n != 200 else ""),
            "metrics": {
                "send_to_250_p50_ms": {"value": round(statistics.median(latencies), 2), "unit": "ms"},
                "send_to_250_p95_ms": {"value": round(p95, 2), "unit": "ms"},
                "queue_msgs_per_s": {"value": round(queue_rate, 1), "unit": "msgs/s"},
                "raw_smtplib_msgs_per_s": {"value": round(raw_rate, 1), "unit": "msgs/s"},
            },
            "notes": "The send worker's step (outbox.do_deliver) in this process, SQLite, a new SMTP connection "
            "with STARTTLS and AUTH per message on both sides; local Postfix submission port; undo delay 0; "
            "IMAP write-back of the Sent copy enqueued, not run.",
        }
        out = ROOT / "bench" / "results" / "send.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        stack.stop()
        embedded_redis.stop(redis_proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
