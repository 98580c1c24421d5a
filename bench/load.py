"""Load: 200 people reading mail (locust, headless) and 500 open WebSockets against the cluster.

Run as root or not: `.venv/bin/python bench/load.py [--people 200] [--messages 300] [--sockets 500]
[--seconds 40]`. It starts a private PostgreSQL (initdb in a temporary directory; else a fresh
database on DATABASE_URL's server) and a private redis-server, fills the cache directly
(webmail.mail.actions.store.store_messages: no mail server is involved, the web side only reads the
cache), signs everyone in (a session each), and starts `manage.py cluster` with 2 web processes
(workers, no watchers or beat: the accounts point at no server). Then, while a thread stores a new
message for a random person every 100 ms and publishes "mail.new" (the WebSockets receive it):

1. browsing: PEOPLE locust users with --think seconds of think time (default 1-3), spread over both web processes, with
   SOCKETS WebSockets held open by a separate asyncio process;
2. capacity: the same people without think time against 2 web processes, then against 1.

Results go to bench/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import platform
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = [
    "invoice",
    "meeting",
    "holiday",
    "report",
    "budget",
    "garden",
    "concert",
    "project",
    "weekend",
    "train",
]


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def cpu_check() -> float:
    """Seconds for a fixed pure-Python loop: how fast this shared machine is right now (0.65 s was
    seen on a quiet one, over 1 s when other jobs held the cores)."""
    started = time.perf_counter()
    sum(i * i for i in range(10**7))
    return round(time.perf_counter() - started, 3)


def message(n: int, person: int, when: datetime) -> bytes:
    rng = random.Random(n * 7919 + person)
    words = " ".join(rng.choice(WORDS) for _ in range(8))
    body = "\r\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(20))
    return (
        f"From: Sender {n % 17} <s{n % 17}@example.org>\r\nTo: p{person}@example.test\r\n"
        f"Subject: {words.title()} {n}\r\nDate: {format_datetime(when)}\r\n"
        f"Message-ID: <m{n}.p{person}@load.test>\r\n\r\n{body}\r\n"
    ).encode()


def seed(people: int, messages: int, work: Path) -> list[dict[str, Any]]:
    """Create PEOPLE people with an account, an Inbox of MESSAGES messages and a session each."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.test import Client

    from accounts.models import MailAccount
    from webmail.mail.actions.store import Incoming, refresh_counts, store_messages
    from webmail.mail.models import Folder, Message, SpecialUse

    out = []
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for p in range(people):
        user = get_user_model().objects.create_user(f"load{p}", f"p{p}@example.test", secrets.token_hex(8))
        account = MailAccount(
            user=user,
            name="Load",
            email=f"p{p}@example.test",
            incoming_host="127.0.0.1",
            incoming_port=9,
            incoming_security="tls",
            incoming_username=f"p{p}@example.test",
            smtp_host="127.0.0.1",
            smtp_port=9,
            smtp_security="starttls",
        )
        account.set_incoming_password("unused")
        account.save()
        inbox = Folder.objects.create(
            account=account, name="INBOX", delimiter="/", special_use=SpecialUse.INBOX
        )
        items = [
            Incoming(
                uid=n + 1, raw=message(n, p, start + timedelta(hours=n)), flags=("\\Seen",) if n % 3 else ()
            )
            for n in range(messages)
        ]
        with transaction.atomic():
            store_messages(inbox, items)
            Folder.objects.filter(pk=inbox.pk).update(synced_uid=messages)
        refresh_counts(inbox)
        client = Client()
        client.force_login(user)
        client.get("/", HTTP_HOST="127.0.0.1")  # the first page sets the CSRF cookie
        ids = list(Message.objects.filter(folder=inbox).order_by("-uid").values_list("pk", flat=True)[:50])
        out.append(
            {
                "user": user.pk,
                "folder": inbox.pk,
                "messages": ids,
                "words": WORDS,
                "cookie": client.cookies["sessionid"].value,
                "csrf": client.cookies["csrftoken"].value,
            }
        )
        if p % 50 == 49:
            log(f"seeded {p + 1} people")
    from webmail.mail import fulltext

    fulltext.index_pending()  # as the indexing task would have after the syncs
    (work / "people.json").write_text(json.dumps(out))
    return out


class Arrivals(threading.Thread):
    """Store a new message for a random person every INTERVAL seconds and publish mail.new."""

    def __init__(self, people: list[dict[str, Any]], interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.people, self.interval = people, interval
        self.stop = threading.Event()
        self.count = 0
        self.errors = 0

    def run(self) -> None:
        from django.db import transaction

        from webmail.mail.actions.store import Incoming, store_messages
        from webmail.mail.events import send_event_on_commit
        from webmail.mail.models import Folder

        uid = 1_000_000
        while not self.stop.wait(self.interval):
            person = random.choice(self.people)
            uid += 1
            try:
                with transaction.atomic():
                    folder = Folder.objects.select_for_update().get(pk=person["folder"])
                    stored = store_messages(
                        folder, [Incoming(uid=uid, raw=message(uid, 0, datetime.now(UTC)))]
                    )
                    Folder.objects.filter(pk=folder.pk).update(synced_uid=uid)
                    send_event_on_commit(
                        person["user"],
                        {
                            "type": "mail.new",
                            "account": folder.account_id,
                            "folder": folder.pk,
                            "count": len(stored),
                        },
                    )
                self.count += 1
            except Exception as exc:
                self.errors += 1
                log(f"arrival failed: {exc}")


# -- WebSockets (run as a child process: python bench/load.py --ws-client ...) ----------------------


async def hold_sockets(
    people: list[dict[str, Any]], hosts: list[str], count: int, seconds: float
) -> dict[str, Any]:
    import websockets

    stats = {"opened": 0, "failed": 0, "closed_early": 0, "events": 0, "held_at_end": 0}
    open_now = set()

    async def one(i: int) -> None:
        person = people[i % len(people)]
        base = hosts[i % len(hosts)].rstrip("/")
        url = base.replace("http://", "ws://") + "/ws/"
        headers = {"Cookie": f"sessionid={person['cookie']}", "Origin": base}
        try:
            async with websockets.connect(
                url, additional_headers=headers, open_timeout=20, ping_interval=None
            ) as ws:
                hello = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if hello.get("type") != "hello":
                    stats["failed"] += 1
                    return
                stats["opened"] += 1
                open_now.add(i)
                try:
                    async for _ in ws:
                        stats["events"] += 1
                except websockets.ConnectionClosed:
                    pass
                open_now.discard(i)
                stats["closed_early"] += 1
        except Exception:
            stats["failed"] += 1

    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(one(i)))
        if i % 50 == 49:
            await asyncio.sleep(0.2)  # open them over a few seconds, as pages do
    await asyncio.sleep(seconds)
    stats["held_at_end"] = len(open_now)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def ws_client_main(args: argparse.Namespace) -> None:
    people = json.loads(Path(args.ws_people).read_text())
    stats = asyncio.run(hold_sockets(people, args.ws_hosts.split(","), args.sockets, args.ws_seconds))
    print(json.dumps(stats), flush=True)


# -- locust runs --------------------------------------------------------------------------------


def locust(
    people_file: Path, hosts: list[str], users: int, seconds: int, wait: str, prefix: Path
) -> dict[str, Any]:
    env = {**os.environ, "LOAD_PEOPLE": str(people_file), "LOAD_HOSTS": ",".join(hosts), "LOAD_WAIT": wait}
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"), "--headless"]
    cmd += ["-u", str(users), "-r", str(max(1, users // 5)), "-t", f"{seconds}s", "--csv", str(prefix)]
    # --reset-stats: count from when every user is running (the spawn burst is a warm-up, not load).
    cmd += ["--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5", "--reset-stats"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 90)
    if not Path(f"{prefix}_stats.csv").exists():
        raise SystemExit(f"locust wrote no statistics (pip install -e '.[bench]'?):\n{done.stderr[-2000:]}")
    rows = list(csv.DictReader(open(f"{prefix}_stats.csv")))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    per = {
        r["Name"]: {"requests": int(r["Request Count"]), "p95_ms": float(r["95%"] or 0)}
        for r in rows
        if r["Name"] != "Aggregated"
    }
    failures: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for r in csv.DictReader(open(f"{prefix}_failures.csv")):
            key = f"{r['Name']}: {r['Error'][:120]}"
            failures[key] = failures.get(key, 0) + int(r["Occurrences"])
    return {
        "failures": failures,
        "requests": int(total["Request Count"]),
        "errors": int(total["Failure Count"]),
        "requests_per_s": round(float(total["Requests/s"]), 1),
        "p50_ms": float(total["50%"] or 0),
        "p95_ms": float(total["95%"] or 0),
        "p99_ms": float(total["99%"] or 0),
        "per_request": per,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=40, help="length of the browsing run")
    parser.add_argument("--capacity-seconds", type=int, default=20, help="length of each capacity run")
    parser.add_argument("--think", default="1,3", help="think time of the browsing run, MIN,MAX seconds")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--ws-client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ws-people", help=argparse.SUPPRESS)
    parser.add_argument("--ws-hosts", help=argparse.SUPPRESS)
    parser.add_argument("--ws-seconds", type=float, default=40, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ws_client:
        ws_client_main(args)
        return 0

    from bench.services import BenchDatabase, Cluster, PrivateRedis, cluster_env

    cpu_before = cpu_check()
    work = Path(tempfile.mkdtemp(prefix="load-", dir="/tmp"))
    work.chmod(0o755)
    database = BenchDatabase(work, "load")
    db_url = database.start()
    db_note = database.note
    redis = PrivateRedis(work)
    cluster = None
    arrivals = None
    try:
        redis.start()
        env = cluster_env(work, db_url, redis.url, LOG_LEVEL="WARNING")
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        t = time.monotonic()
        people = seed(args.people, args.messages, work)
        seed_s = time.monotonic() - t
        log(f"seeded {args.people} people x {args.messages} messages in {seed_s:.0f}s")
        from django.db import connection

        with connection.cursor() as cursor:  # as a database in service is: vacuumed, with statistics
            cursor.execute("VACUUM ANALYZE")
        cluster = Cluster(
            work, env, ["--sync", "1", "--send", "1", "--push", "1", "--watchers", "0", "--no-beat"]
        )
        cluster.start()
        hosts = cluster.state()["web_urls"]
        log(f"cluster up: {hosts}")
        arrivals = Arrivals(people)
        arrivals.start()
        people_file = work / "people.json"
        ws = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--ws-client",
                "--ws-people",
                str(people_file),
                "--ws-hosts",
                ",".join(hosts),
            ]
            + ["--sockets", str(args.sockets), "--ws-seconds", str(args.seconds + 15)],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(10)  # let the sockets open before the browsing starts
        log("browsing run")
        browsing = locust(people_file, hosts, args.people, args.seconds, args.think, work / "browse")
        ws_out, _ = ws.communicate(timeout=120)
        sockets = json.loads(ws_out.strip().splitlines()[-1])
        log(f"browsing: {browsing['requests_per_s']} req/s, p95 {browsing['p95_ms']} ms; sockets {sockets}")
        log("capacity run, 2 web processes")
        cap2 = locust(people_file, hosts, args.people, args.capacity_seconds, "0,0", work / "cap2")
        log("capacity run, 1 web process")
        cap1 = locust(people_file, hosts[:1], args.people, args.capacity_seconds, "0,0", work / "cap1")
        log(f"capacity: 1 web {cap1['requests_per_s']} req/s, 2 web {cap2['requests_per_s']} req/s")
        arrivals.stop.set()
    finally:
        if arrivals:
            arrivals.stop.set()
        if cluster:
            cluster.stop()
        redis.stop()
        database.stop()
        if os.environ.get("LOAD_KEEP_LOGS"):
            shutil.copytree(
                work,
                os.environ["LOAD_KEEP_LOGS"],
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("pg*", "*.sock"),
            )
        shutil.rmtree(work, ignore_errors=True)
    cpu_after = cpu_check()
    result = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, {platform.python_implementation()} {platform.python_version()}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python bench/load.py", *sys.argv[1:]]),
        "metrics": {
            "requests_per_s": {"value": browsing["requests_per_s"], "unit": "req/s"},
            "p95_ms": {"value": browsing["p95_ms"], "unit": "ms"},
            "errors": {"value": browsing["errors"] + cap2["errors"] + cap1["errors"], "unit": "requests"},
            "websockets_held": {"value": sockets["held_at_end"], "unit": "sockets"},
            "capacity_1_web_requests_per_s": {"value": cap1["requests_per_s"], "unit": "req/s"},
            "capacity_2_web_requests_per_s": {"value": cap2["requests_per_s"], "unit": "req/s"},
            "capacity_2_web_p95_ms": {"value": cap2["p95_ms"], "unit": "ms"},
        },
        "runs": {"browsing": browsing, "capacity_2_web": cap2, "capacity_1_web": cap1, "websockets": sockets},
        "cpu_check_s": {"before": cpu_before, "after": cpu_after},
        "arrivals": {
            "messages": arrivals.count if arrivals else 0,
            "errors": arrivals.errors if arrivals else 0,
        },
        "notes": f"{args.people} people x {args.messages} cached messages ({db_note}, private redis-server), "
        f"locust {args.people} users ({args.think.replace(',', '-')} s think time, {args.seconds} s) plus {args.sockets} WebSockets held by an "
        f"asyncio process; capacity runs: no think time, {args.capacity_seconds} s each. Everything (locust, "
        "PostgreSQL, Redis, 2 uvicorn, workers) shares the 2 cores with other jobs.",
    }
    text = json.dumps(result, indent=2) + "\n"
    print(text)
    if not args.no_write:
        # The default run writes load.json; another think time its own file beside it.
        name = (
            "load" if args.think == "1,3" else "load_think_" + args.think.replace(",", "_").replace(".", "")
        )
        (ROOT / "bench" / "results" / f"{name}.json").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
