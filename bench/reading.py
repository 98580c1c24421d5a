"""Benchmark reading mail: server time of list pages, opening a message and full-text search.

Run: .venv/bin/python bench/reading.py [--messages N] [--runs N] [--profile METRIC]

Builds a fresh database (a SQLite file in a temporary directory, or a fresh PostgreSQL database on
the server of DATABASE_URL when that is set) holding one person with 10 mail accounts: N messages
(default 100,000) in one INBOX and 1,000 in each other account's INBOX, inserted in bulk directly
(the full-text triggers run as they would in a sync). Each metric calls the real view through
RequestFactory (no network, no middleware): the first list page, a page 1,000 pages deep (keyset),
opening a message (the htmx message pane, which parses and sanitises the raw message), and a search
with few (5) and with many (about a third of all messages) hits. Reports p50/p95 over --runs
requests after warm-up. Results: bench/results/reading.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "reading.json"
WORDS = (
    "meeting project budget review quarter client invoice schedule travel design team update plan "
    "release draft contract payment order shipping account support request ticket agenda notes "
    "minutes proposal summary feedback launch report analysis market sales growth hiring office "
    "holiday lunch dinner coffee weekend family photo garden music book movie game sport city "
    "train flight hotel booking confirm cancel change question answer thanks hello regards"
).split()
RARE = "zebracorn"
COMMON = "quarterly"  # in about a third of the messages
HTML = (
    "<html><body><table width='600'><tr><td style='font-family:Arial;color:#333'>"
    "<h1>Newsletter {n}</h1><p>{body}</p><p><a href='https://example.test/{n}'>Read more</a></p>"
    "<img src='https://images.example.test/{n}.png' alt='banner' width='600' height='200'>"
    "<img src='https://t.example.test/p.gif' width='1' height='1'></td></tr></table></body></html>"
)


def setup_django(work: Path) -> str | None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "webmail.settings"
    os.environ["WEBMAIL_VAR_DIR"] = str(work / "var")
    os.environ["LOG_LEVEL"] = "WARNING"
    drop = None
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith("postgres"):
        import psycopg

        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS bench_reading")
            conn.execute("CREATE DATABASE bench_reading")
        os.environ["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/bench_reading"
        drop = "bench_reading"
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{work}/reading.sqlite3"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return drop


def raw_message(n: int, words: str, when: datetime) -> bytes:
    from email.utils import format_datetime

    body = HTML.format(n=n, body=words)
    return (
        f"From: Sender {n % 500} <sender{n % 500}@example.test>\r\nTo: Person <person@example.test>\r\n"
        f"Subject: Update {n}: {words[:40]}\r\nDate: {format_datetime(when)}\r\nMessage-ID: <b{n}@example.test>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        f"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{words}\r\n"
        f"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{body}\r\n--alt--\r\n"
    ).encode()


def populate(count: int, other: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from accounts.models import MailAccount
    from webmail.mail import blobs
    from webmail.mail.models import Folder, Message, MessageBody, SpecialUse, Thread

    rng = random.Random(5)
    user = get_user_model().objects.create_user("reader", "reader@example.test", "x")
    accounts = [
        MailAccount.objects.create(
            user=user,
            name=f"Account {i}",
            email=f"reader{i}@example.test",
            incoming_host="imap.example.test",
            incoming_port=993,
            incoming_username="reader",
            smtp_host="smtp.example.test",
            smtp_port=587,
        )
        for i in range(10)
    ]
    folders = []
    for account in accounts:
        for name, use in (
            ("INBOX", SpecialUse.INBOX),
            ("Archive", SpecialUse.ARCHIVE),
            ("Trash", SpecialUse.TRASH),
        ):
            folders.append(Folder.objects.create(account=account, name=name, delimiter="/", special_use=use))
    big = folders[0]
    start = datetime(2020, 1, 1, tzinfo=UTC)
    rare_at = set(rng.sample(range(count), 5))
    n = 0
    for folder, total in [(big, count)] + [(f, other) for f in folders[3::3]]:
        for chunk in range(0, total, 2000):
            size = min(2000, total - chunk)
            with transaction.atomic():
                threads = Thread.objects.bulk_create(
                    [Thread(account_id=folder.account_id, subject="t") for _ in range((size + 3) // 4)]
                )
                rows, texts, raws = [], [], []
                for i in range(size):
                    idx = chunk + i
                    words = " ".join(rng.choice(WORDS) for _ in range(60))
                    if folder is big and idx % 3 == 0:
                        words += " " + COMMON
                    if folder is big and idx in rare_at:
                        words += " " + RARE
                    when = start + timedelta(minutes=idx * 7 + rng.randint(0, 5))
                    rows.append(
                        Message(
                            account_id=folder.account_id,
                            folder=folder,
                            uid=idx + 1,
                            thread=threads[i // 4],
                            seen=rng.random() < 0.8,
                            flagged=rng.random() < 0.05,
                            internal_date=when,
                            date=when,
                            size=4000 + rng.randint(0, 4000),
                            subject=f"Update {n}: {words[:40]}",
                            from_name=f"Sender {n % 500}",
                            from_email=f"sender{n % 500}@example.test",
                            to=[["Person", "person@example.test"]],
                            message_id=f"b{n}@example.test",
                            snippet=words[:200],
                            has_attachments=rng.random() < 0.1,
                        )
                    )
                    texts.append(words)
                    raws.append(blobs.pack(raw_message(n, words, when)))
                    n += 1
                Message.objects.bulk_create(rows, batch_size=1000)
                MessageBody.objects.bulk_create(
                    [
                        MessageBody(message_id=r.pk, raw_compressed=raw, text=t)
                        for r, raw, t in zip(rows, raws, texts)
                    ],
                    batch_size=500,
                )
    from webmail.mail import fulltext
    from webmail.mail.actions.store import refresh_counts

    for folder in folders:
        refresh_counts(folder)
    fulltext.index_pending()  # what the indexing task does after a sync (migration 0005)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"user": user, "big": big, "total": n}


def measure(fn, runs: int) -> dict:
    for _ in range(5):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"p50": statistics.median(times), "p95": times[max(0, int(len(times) * 0.95) - 1)]}


def profile(fn, runs: int) -> None:
    """Print where the time of RUNS calls of FN goes (cumulative, top 40)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        fn()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument(
        "--profile", metavar="METRIC", help="also print a cProfile of METRIC (e.g. search_many)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-reading-"))
    base_url = os.environ.get("DATABASE_URL", "")
    drop = setup_django(work)
    try:
        run(args, work, base_url)
    finally:
        from django.db import connections

        connections.close_all()
        if drop:
            import psycopg

            with psycopg.connect(base_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {drop}")
        shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path, base_url: str) -> None:
    from django.contrib.sessions.backends.signed_cookies import SessionStore
    from django.db import connection
    from django.test import RequestFactory
    from django_htmx.middleware import HtmxDetails

    from webmail.mail import search
    from webmail.mail.models import Message
    from webmail.mail.views import mailbox, message

    t0 = time.perf_counter()
    data = populate(args.messages, 1000)
    insert_s = time.perf_counter() - t0
    print(f"inserted {data['total']} messages in {insert_s:.1f} s", flush=True)
    user, big = data["user"], data["big"]
    factory = RequestFactory()

    def request(path: str, **headers: str):
        req = factory.get(path, HTTP_HOST="127.0.0.1", **headers)
        req.user = user
        req.session = SessionStore()
        req.htmx = HtmxDetails(req)
        return req

    def check(response) -> None:
        assert response.status_code == 200, response.status_code

    ordered = Message.objects.filter(folder=big).order_by("-date", "-id")
    deep_row = ordered[min(search.PAGE_SIZE * 1000, args.messages - search.PAGE_SIZE) - 1]
    deep_cursor = search.encode_cursor("date", deep_row)
    ids = list(ordered.values_list("id", flat=True)[:5000])
    rng = random.Random(7)
    folder_url = f"/mail/folder/{big.pk}/"

    metrics = {
        "list_first": lambda: check(mailbox.folder(request(folder_url), big.pk)),
        "list_deep": lambda: check(mailbox.folder(request(folder_url + f"?after={deep_cursor}"), big.pk)),
        "open": lambda: check(
            message.message_view(
                request(
                    f"/mail/message/{(i := rng.choice(ids))}/",
                    HTTP_HX_REQUEST="true",
                    HTTP_HX_TARGET="message-pane",
                ),
                i,
            )
        ),
        "search_few": lambda: check(mailbox.search(request(f"/mail/search/?q={RARE}"))),
        "search_many": lambda: check(mailbox.search(request(f"/mail/search/?q={COMMON}"))),
    }
    _, few = search.search_page(user, RARE)
    _, many = search.search_page(user, COMMON)
    assert len(few.messages) == 5 and len(many.messages) == search.PAGE_SIZE
    results = {}
    for name, fn in metrics.items():
        results[name] = measure(fn, args.runs)
        print(f"{name}: p50 {results[name]['p50']:.1f} ms, p95 {results[name]['p95']:.1f} ms", flush=True)
    if args.profile:
        profile(metrics[args.profile], args.runs)
    database = f"{connection.vendor} {connection.Database.sqlite_version if connection.vendor == 'sqlite' else connection.pg_version}"
    out = {
        "machine": f"{platform.node()} {platform.platform()} {os.cpu_count()} cpu, python {platform.python_version()}, {database}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": ("DATABASE_URL=... " if base_url else "")
        + f".venv/bin/python bench/reading.py --messages {args.messages} --runs {args.runs}",
        "metrics": {},
        "notes": (
            f"{data['total']} messages ({args.messages} in one INBOX, 1,000 in each of 9 other accounts), "
            f"bulk insert incl. full-text indexing {insert_s:.0f} s; view functions via RequestFactory; "
            "open = htmx message pane (raw parse + sanitise of an HTML newsletter); "
            "search_many matches a third of the big folder. Targets: lists/open p95 < 50 ms, search p95 < 150 ms."
        ),
    }
    for name, values in results.items():
        out["metrics"][f"{name}_p95_ms"] = {"value": round(values["p95"], 1), "unit": "ms"}
        out["metrics"][f"{name}_p50_ms"] = {"value": round(values["p50"], 1), "unit": "ms"}
    # SQLite (the default) writes reading.json; a PostgreSQL run its own file beside it.
    path = RESULTS if connection.vendor == "sqlite" else RESULTS.with_name("reading_postgresql.json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
