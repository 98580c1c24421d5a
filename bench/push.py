"""Benchmark live push: IDLE watcher capacity, and delivery-to-DOM latency in a real browser.

Run: .venv/bin/python bench/push.py [--connections 1000] [--deliveries 50] [--skip-dom]

Needs root (the mail stack) and the Debian packages of bin/test. Starts its own mail stack and a
private Redis in a temporary directory, a fresh SQLite database (or PostgreSQL when DATABASE_URL is
set), and measures:
- watcher_rss_mb_per_1000: RSS of one `manage.py watch` process holding N IDLE connections, minus the
  same process holding none, scaled to 1,000 connections; also its CPU use while idle.
- delivery_to_dom_p50_ms / _p95_ms: from the SMTP server's 250 reply to the new row in the open
  inbox page (Chromium via Playwright), over D deliveries, through the whole path: Postfix, Dovecot,
  IDLE, the watcher, a Celery worker's sync, Redis, the Channels consumer and the page's WebSocket.
Results: bench/results/push.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "push.json"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_environment(work: Path) -> None:
    """Private Redis, instance dir and database for this run; Django configured."""
    from webmail.ops import embedded_redis

    os.environ["WEBMAIL_VAR_DIR"] = str(work / "var")
    sock = work / "redis" / "redis.sock"
    embedded_redis.start(sock)
    os.environ["REDIS_URL"] = f"unix://{sock}"
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "webmail.settings"
    os.environ["WEBMAIL_ALLOWED_MAIL_HOSTS"] = "127.0.0.1,localhost"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_accounts(stack, count: int, owner_name: str = "bench") -> list:
    from django.contrib.auth import get_user_model

    from accounts.models import Identity, MailAccount

    user, _ = get_user_model().objects.get_or_create(username=owner_name)
    accounts = []
    for i in range(count):
        box = stack.add_user(f"w{i}-{secrets.token_hex(3)}@example.test", "pw")
        acc = MailAccount(
            user=user,
            name=f"box {i}",
            email=box.address,
            incoming_host="127.0.0.1",
            incoming_port=stack.imap_port,
            incoming_security="none",
            incoming_username=box.address,
            smtp_host="127.0.0.1",
            smtp_port=stack.submission_port,
            smtp_security="none",
            state="ok",
        )
        acc.set_incoming_password(box.password)
        accounts.append(acc)
    MailAccount.objects.bulk_create(accounts, batch_size=500)
    Identity.objects.bulk_create(
        [Identity(account=a, email=a.email, is_default=True) for a in MailAccount.objects.filter(user=user)]
    )
    return list(MailAccount.objects.filter(user=user))


def watcher_process(env: dict[str, str], capacity: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "watch", "--capacity", str(capacity), "--name", "bench"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def held_leases() -> int:
    from webmail.mail.locks import redis_client

    return sum(1 for _ in redis_client().scan_iter("webmail:watch:lease:*", count=1000))


def measure_watcher(stack, connections: int) -> dict[str, dict[str, object]]:
    """RSS and idle CPU of a watcher with 0 and with N IDLE connections."""
    env = dict(os.environ)
    idle = watcher_process(env, 0)
    time.sleep(6)
    base_rss = rss_mb(idle.pid)
    idle.send_signal(signal.SIGTERM)
    idle.wait(30)

    make_accounts(stack, connections)
    proc = watcher_process(env, connections)
    started = time.monotonic()
    while held_leases() < connections and time.monotonic() - started < 300:
        time.sleep(1)
    # Leases come first; give every thread time to log in, SELECT and enter IDLE.
    deadline = time.monotonic() + 120
    last = -1.0
    while time.monotonic() < deadline:
        time.sleep(5)
        now = rss_mb(proc.pid)
        if abs(now - last) < 0.5:
            break
        last = now
    ready_s = time.monotonic() - started
    full_rss = rss_mb(proc.pid)
    cpu_before = cpu_seconds(proc.pid)
    time.sleep(30)
    cpu_idle = (cpu_seconds(proc.pid) - cpu_before) / 30
    threads = len(os.listdir(f"/proc/{proc.pid}/task"))
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    per_1000 = (full_rss - base_rss) * 1000 / connections
    print(
        f"watcher: base {base_rss:.1f} MB, with {connections} IDLE connections {full_rss:.1f} MB "
        f"({threads} threads, ready in {ready_s:.0f}s), idle CPU {cpu_idle * 100:.2f}% of a core"
    )
    return {
        "watcher_rss_mb_per_1000": {"value": round(per_1000, 1), "unit": "MB"},
        "watcher_base_rss_mb": {"value": round(base_rss, 1), "unit": "MB"},
        "watcher_idle_cpu_percent": {"value": round(cpu_idle * 100, 2), "unit": "%"},
        "watcher_connections": {"value": connections, "unit": "connections"},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--deliveries", type=int, default=50)
    parser.add_argument("--skip-dom", action="store_true")
    parser.add_argument("--skip-watcher", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/push.py needs root (it runs Dovecot and Postfix)", file=sys.stderr)
        return 2
    # Every IDLE connection is an imap process with inotify watches: raise the per-user limits.
    for knob, value in (("max_user_instances", 8192), ("max_user_watches", 524288)):
        path = Path(f"/proc/sys/fs/inotify/{knob}")
        try:
            if int(path.read_text()) < value:
                path.write_text(str(value))
        except OSError:
            os.environ.setdefault("MAILSTACK_IDLE_CHECK_INTERVAL", "1 secs")
    os.environ["MAILSTACK_PROCESS_LIMIT"] = str(args.connections + 200)

    from tests.mailstack.stack import MailStack

    work = Path(tempfile.mkdtemp(prefix="bench-push-"))
    work.chmod(0o755)
    stack = MailStack(work / "stack")
    stack.start()
    metrics: dict[str, dict[str, object]] = {}
    try:
        setup_environment(work)
        if not args.skip_dom:
            from bench.push_dom import measure_delivery_to_dom

            metrics.update(measure_delivery_to_dom(stack, args.deliveries))
        if not args.skip_watcher:
            metrics.update(measure_watcher(stack, args.connections))
    finally:
        stack.stop()
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"metrics": {}}
    result = {
        "machine": f"{platform.node()} ({os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()})",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python bench/push.py " + " ".join(sys.argv[1:]),
        "metrics": {**previous.get("metrics", {}), **metrics},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
