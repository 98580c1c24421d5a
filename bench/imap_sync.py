"""Benchmark the IMAP sync against the real Dovecot, side by side with the raw FETCH limit and mbsync.

Run: .venv/bin/python bench/imap_sync.py [--quick] [--messages N] [--profile FILE]

Starts its own mail stack (tests.mailstack.stack.MailStack, needs root and the Debian packages
dovecot-imapd dovecot-lmtpd postfix; mbsync comes from `apt-get install isync`) in a temporary
directory, seeds a folder with realistic mail by writing Maildir files, and measures in one run,
in --rounds rounds side by side (medians; ratios are medians of the per-round ratios): raw_fetch_s,
initial_sync_s, mbsync_s, initial_to_raw_ratio, initial_to_mbsync_ratio, fulltext_index_s (the
index is filled after the sync, see webmail/mail/fulltext.py); then nochange_resync_ms,
incremental_resync_ms and (unless --quick) peak_rss_mb_100k (the sync process plus its parse
process). The cache goes to a fresh SQLite file, or to a fresh PostgreSQL database
on the server of DATABASE_URL when that is set. Results: bench/results/imap_sync.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.memory import MemorySampler, peak_rss_mb  # noqa: E402
from tests.mailstack.stack import MailStack, MailUser  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "imap_sync.json"
WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but "
    "have an they you were her she there been one all we their has would when if so no will can more "
    "meeting report garden invoice project schedule budget review draft thanks please update friday"
).split()
FETCH_ITEMS = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODY.PEEK[]", "MODSEQ"]


# -- seeding --------------------------------------------------------------------------------------


_TEXTS: dict[tuple[int, int], str] = {}
_BLOBS: dict[int, str] = {}


def _text(rng: random.Random, size: int) -> str:
    """Return about SIZE bytes of words; a pool of 40 variants per size keeps seeding fast."""
    key = (size, rng.randrange(40))
    if key not in _TEXTS:
        _TEXTS[key] = _make_text(rng, size)
    return _TEXTS[key]


def _blob(rng: random.Random) -> str:
    """Return a base64 attachment body of 50-150 KB of random (incompressible) bytes, from a pool."""
    key = rng.randrange(64)
    if key not in _BLOBS:
        raw = rng.randbytes(rng.randint(50_000, 150_000))
        _BLOBS[key] = base64.encodebytes(raw).decode().replace("\n", "\r\n")
    return _BLOBS[key]


def _make_text(rng: random.Random, size: int) -> str:
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 14)))
        lines.append(line)
        total += len(line) + 2
    return "\r\n".join(lines)


def realistic_message(n: int, rng: random.Random, when: datetime) -> bytes:
    """Return message N: mostly 2-20 KiB text, some HTML, about 1 in 8 with a 50-200 KiB attachment.

    Messages come in threads of up to 6 (In-Reply-To / References to earlier ones).
    """
    thread, pos = divmod(n, 6)
    subject = f"{'Re: ' if pos else ''}{rng.choice(WORDS).title()} {rng.choice(WORDS)} #{thread}"
    refs = " ".join(f"<b{thread * 6 + i}@bench.test>" for i in range(pos))
    headers = [
        "Return-Path: <sender@example.org>",
        f"Received: from mx.example.org by mail.example.test; {format_datetime(when)}",
        f"From: Person {n % 97} <person{n % 97}@example.org>",
        "To: Bench <bench@example.test>",
        *([f"Cc: Other {n % 13} <other{n % 13}@example.org>"] if n % 3 == 0 else []),
        f"Subject: {subject}",
        f"Date: {format_datetime(when)}",
        f"Message-ID: <b{n}@bench.test>",
        *([f"In-Reply-To: <b{n - 1}@bench.test>", f"References: {refs}"] if pos else []),
        "MIME-Version: 1.0",
    ]
    body = _text(rng, rng.choice((2_000, 4_000, 8_000, 12_000, 20_000)))
    kind = n % 8
    if kind == 0:
        blob = _blob(rng)
        parts = (
            'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            f'{body}\r\n--b1\r\nContent-Type: application/pdf; name="report-{n}.pdf"\r\n'
            f'Content-Disposition: attachment; filename="report-{n}.pdf"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{blob}\r\n--b1--\r\n"
        )
    elif kind in (1, 2):
        html = "".join(f"<p>{line}</p>" for line in body.split("\r\n"))
        parts = (
            'Content-Type: multipart/alternative; boundary="b2"\r\n\r\n--b2\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{body}\r\n--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            f"<html><body>{html}</body></html>\r\n--b2--\r\n"
        )
    else:
        parts = f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    return ("\r\n".join(headers) + "\r\n" + parts).encode()


def small_message(n: int, when: datetime) -> bytes:
    return (
        f"From: p{n % 97}@example.org\r\nTo: bench@example.test\r\nSubject: Small {n}\r\n"
        f"Date: {format_datetime(when)}\r\nMessage-ID: <s{n}@bench.test>\r\n\r\nHello {n}.\r\n"
    ).encode()


def maildir_of(stack: MailStack, user: MailUser, folder: str = "INBOX") -> Path:
    root = stack.maildir_root / user.address / "Maildir"
    return root if folder == "INBOX" else root / f".{folder}"


def seed_maildir(stack: MailStack, user: MailUser, count: int, make, folder: str = "INBOX") -> int:
    """Write COUNT messages straight into USER's Maildir (owned by mail, mtime = INTERNALDATE)."""
    client = stack.imap_client(user)  # the first login creates the Maildir
    if folder != "INBOX":
        client.create_folder(folder)
    client.select_folder(folder)
    client.logout()
    base = maildir_of(stack, user, folder)
    st = os.stat(stack.maildir_root)
    for sub in ("cur", "new", "tmp"):
        (base / sub).mkdir(parents=True, exist_ok=True)
        os.chown(base / sub, st.st_uid, st.st_gid)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rng = random.Random(42)
    total = 0
    for n in range(count):
        when = start + timedelta(minutes=7 * n)
        raw = make(n, rng, when)
        total += len(raw)
        flags = "S" if n % 3 else ""
        path = base / "cur" / f"{int(when.timestamp())}.M{n}P1.bench,S={len(raw)}:2,{flags}"
        path.write_bytes(raw)
        os.chown(path, st.st_uid, st.st_gid)
        os.utime(path, (when.timestamp(), when.timestamp()))
    return total


# -- measurements ---------------------------------------------------------------------------------


def raw_fetch(stack: MailStack, user: MailUser, folder: str = "INBOX") -> float:
    """The limit: imapclient FETCH of everything the sync stores, batches of 500, no database."""
    client = stack.imap_client(user)
    try:
        client.select_folder(folder, readonly=True)
        started = time.perf_counter()
        uids = client.search("ALL")
        sizes = 0
        for i in range(0, len(uids), 500):
            for data in client.fetch(uids[i : i + 500], FETCH_ITEMS).values():
                sizes += len(data[b"BODY[]"])
        return time.perf_counter() - started
    finally:
        client.logout()


def mbsync(stack: MailStack, user: MailUser, work: Path) -> float | None:
    if not shutil.which("mbsync"):
        print("mbsync not found: apt-get install isync (mbsync_s is left out)", file=sys.stderr)
        return None
    target = work / "mbsync-maildir"
    target.mkdir()
    config = work / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount bench
Host localhost
Port {stack.imaps_port}
User {user.address}
Pass {user.password}
TLSType IMAPS
CertificateFile {stack.ca_file}

IMAPStore remote
Account bench

MaildirStore local
Path {target}/
Inbox {target}/INBOX
SubFolders Verbatim

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
"""
    )
    time.sleep(1.1)  # mbsync sleeps a second after a recent local change: leave a gap
    started = time.perf_counter()
    done = subprocess.run(["mbsync", "-c", str(config), "-q", "bench"], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 and "TLSType" in done.stderr:  # isync before 1.5 calls it SSLType
        config.write_text(config.read_text().replace("TLSType", "SSLType"))
        shutil.rmtree(target)
        target.mkdir()
        time.sleep(1.1)
        started = time.perf_counter()
        done = subprocess.run(["mbsync", "-c", str(config), "-q", "bench"], capture_output=True, text=True)
        elapsed = time.perf_counter() - started
    if done.returncode != 0:
        print(f"mbsync failed: {done.stderr.strip()}", file=sys.stderr)
        return None
    return elapsed


def setup_django(work: Path, stack: MailStack, db_name: str) -> str | None:
    """Point Django at a fresh database and the stack; return a PostgreSQL database to drop, if any."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "webmail.settings"
    os.environ["WEBMAIL_VAR_DIR"] = str(work / "var")
    os.environ["WEBMAIL_ALLOWED_MAIL_HOSTS"] = "127.0.0.1"
    os.environ["WEBMAIL_EXTRA_CA_FILE"] = stack.ca_file
    os.environ["LOG_LEVEL"] = "WARNING"
    drop = None
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith("postgres"):
        import psycopg

        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db_name}")
            conn.execute(f"CREATE DATABASE {db_name}")
        os.environ["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + db_name
        drop = db_name
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{work}/{db_name}.sqlite3"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return drop


def drop_database(name: str | None, base: str) -> None:
    if not name:
        return
    from django.db import connections

    connections.close_all()
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")


def make_account(stack: MailStack, user: MailUser, username: str):  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    from accounts.models import MailAccount

    person = get_user_model().objects.create_user(username, f"{username}@example.test", "x")
    account = MailAccount(
        user=person,
        name="Bench",
        email=user.address,
        incoming_host=stack.host,
        incoming_port=stack.imaps_port,
        incoming_security="tls",
        incoming_username=user.address,
        smtp_host=stack.host,
        smtp_port=stack.submission_port,
        smtp_security="starttls",
    )
    account.set_incoming_password(user.password)
    account.save()
    return account


def timed_sync(account_id: int, folders: list[str] | None = None) -> float:
    from webmail.mail.actions.sync import do_sync_account

    started = time.perf_counter()
    report = do_sync_account(account_id, folder_names=folders)
    elapsed = time.perf_counter() - started
    if report.error or report.skipped:
        raise SystemExit(f"sync failed: {report}")
    return elapsed


def child_100k(args: argparse.Namespace) -> None:
    """In a child process: initial sync of the 100k folder into a fresh database; print peak RSS."""
    stack = MailStack(args.stack_dir)
    user = MailUser(args.user, args.password)
    work = Path(args.work)
    drop = setup_django(work, stack, "bench_imap_sync_100k")
    sampler = MemorySampler()
    try:
        account = make_account(stack, user, "bench100k")
        sampler.start()
        elapsed = timed_sync(account.pk, ["INBOX"])
        sampler.stop()
        from webmail.mail.models import Message

        count = Message.objects.filter(account=account).count()
    finally:
        drop_database(drop, args.base_url)
    print(
        json.dumps(
            {
                "peak_rss_mb": max(peak_rss_mb(), sampler.peak_total_mb),
                "own_mb": peak_rss_mb(),
                "parser_mb": sampler.peak_children_mb,
                "seconds": elapsed,
                "count": count,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="skip the 100,000-message memory run")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000, help="messages in the memory run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of raw fetch, initial sync, mbsync")
    parser.add_argument("--profile", help="write a cProfile of the first initial sync to this file")
    parser.add_argument(
        "--parse-processes",
        type=int,
        default=None,
        help="WEBMAIL_SYNC_PARSE_PROCESSES for the run (default: the product's default)",
    )
    parser.add_argument("--child-100k", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stack-dir", help=argparse.SUPPRESS)
    parser.add_argument("--user", help=argparse.SUPPRESS)
    parser.add_argument("--password", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_100k:
        child_100k(args)
        return
    if os.geteuid() != 0:
        raise SystemExit("the benchmark starts Dovecot and Postfix and must run as root")

    base_url = os.environ.get("DATABASE_URL", "")
    load_at_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="bench-", dir="/tmp"))
    work.chmod(0o755)
    stack = MailStack(work / "stack")
    stack.start()
    redis_proc = None
    metrics: dict[str, dict[str, object]] = {}
    try:
        if not os.environ.get("REDIS_URL"):
            from webmail.ops import embedded_redis

            socket_path = work / "redis.sock"
            redis_proc = embedded_redis.start(socket_path)
            os.environ["REDIS_URL"] = f"unix://{socket_path}"
        user = stack.add_user("bench@example.test", "bench-password")
        started = time.perf_counter()
        size = seed_maildir(stack, user, args.messages, realistic_message)
        print(
            f"seeded {args.messages} messages ({size / 2**20:.0f} MiB) in {time.perf_counter() - started:.1f}s"
        )
        os.sync()  # the seeded files on disk now, not flushed by the kernel in the middle of a measurement
        # Let Dovecot build its index once, as it would have for a mailbox in use, and read every
        # message once (untimed) so all three contenders find the same warm server and page cache.
        warm = stack.imap_client(user)
        warm.select_folder("INBOX")
        warm.logout()
        raw_fetch(stack, user)

        drop = setup_django(work, stack, "bench_imap_sync")
        from django.conf import settings

        from webmail.mail import fulltext
        from webmail.mail.models import Message

        if args.parse_processes is not None:
            settings.WEBMAIL_SYNC_PARSE_PROCESSES = args.parse_processes
        # Rounds of the three side by side (raw FETCH, our initial sync into a new account's empty
        # cache, mbsync into a new Maildir), so a slow moment of the machine hits all of them; the
        # figures are medians, and each ratio is the median of the per-round ratios.
        runs: dict[str, list[float]] = {"raw": [], "ours": [], "index": [], "mbsync": []}
        accounts = []
        try:
            for n in range(args.rounds):
                os.sync()  # each contender starts with nothing of the others' writes left to flush
                runs["raw"].append(raw_fetch(stack, user))
                account = make_account(stack, user, f"bench{n}")
                accounts.append(account)
                if args.profile and n == 0:
                    import cProfile

                    profiler = cProfile.Profile()
                    profiler.enable()
                os.sync()
                runs["ours"].append(timed_sync(account.pk))
                if args.profile and n == 0:
                    profiler.disable()
                    profiler.dump_stats(args.profile)
                # The full-text index is filled after the sync, by the task its commits start (no
                # worker runs here: the task's body is called), and is timed on its own.
                started = time.perf_counter()
                indexed = fulltext.run_indexing()
                runs["index"].append(time.perf_counter() - started)
                assert indexed == args.messages, indexed
                target = work / f"mbsync-{n}"
                target.mkdir()
                os.sync()
                mb = mbsync(stack, user, target)
                if mb is not None:
                    runs["mbsync"].append(mb)
                print(
                    f"round {n + 1}: raw fetch {runs['raw'][-1]:.2f} s, initial sync {runs['ours'][-1]:.2f} s"
                    f" (+ full-text index {runs['index'][-1]:.2f} s), mbsync "
                    + (f"{mb:.2f} s" if mb is not None else "n/a")
                )
            median = statistics.median
            metrics["raw_fetch_s"] = {"value": round(median(runs["raw"]), 3), "unit": "s"}
            metrics["initial_sync_s"] = {"value": round(median(runs["ours"]), 3), "unit": "s"}
            metrics["initial_sync_max_s"] = {"value": round(max(runs["ours"]), 3), "unit": "s"}
            metrics["initial_to_raw_ratio"] = {
                "value": round(median(o / r for o, r in zip(runs["ours"], runs["raw"], strict=True)), 2),
                "unit": "x",
            }
            metrics["fulltext_index_s"] = {"value": round(median(runs["index"]), 3), "unit": "s"}
            if runs["mbsync"]:
                metrics["mbsync_s"] = {"value": round(median(runs["mbsync"]), 3), "unit": "s"}
                metrics["initial_to_mbsync_ratio"] = {
                    "value": round(
                        median(o / m for o, m in zip(runs["ours"], runs["mbsync"], strict=False)), 2
                    ),
                    "unit": "x",
                }
            for name in (
                "raw_fetch_s",
                "initial_sync_s",
                "initial_to_raw_ratio",
                "mbsync_s",
                "initial_to_mbsync_ratio",
            ):
                if name in metrics:
                    print(f"{name}: {metrics[name]['value']}")

            account = accounts[0]
            nochange = [timed_sync(account.pk) * 1000 for _ in range(5)]
            metrics["nochange_resync_ms"] = {"value": round(statistics.median(nochange), 1), "unit": "ms"}
            print(f"no-change re-sync: {metrics['nochange_resync_ms']['value']} ms (median of 5)")

            other = stack.imap_client(user)
            rng = random.Random(7)
            now = datetime.now(UTC)
            other.multiappend(
                "INBOX", [{"msg": realistic_message(args.messages + i, rng, now)} for i in range(10)]
            )
            other.select_folder("INBOX")
            uids = other.search("ALL")
            picked = rng.sample(uids[:-10], 100)
            other.add_flags(picked[:50], [b"\\Flagged"])
            other.remove_flags(picked[50:], [b"\\Seen"])
            other.logout()
            incremental = timed_sync(account.pk) * 1000
            metrics["incremental_resync_ms"] = {"value": round(incremental, 1), "unit": "ms"}
            print(f"incremental re-sync (10 new, 100 flag changes): {incremental:.1f} ms")
            assert Message.objects.filter(account=account).count() == args.messages + 10
        finally:
            drop_database(drop, base_url)

        if not args.quick:
            big = stack.add_user("big@example.test", "big-password")
            started = time.perf_counter()
            seed_maildir(stack, big, args.big, lambda n, _rng, when: small_message(n, when))
            warm = stack.imap_client(big)
            warm.select_folder("INBOX")
            warm.logout()
            print(f"seeded {args.big} small messages in {time.perf_counter() - started:.1f}s")
            env = {**os.environ, "DATABASE_URL": base_url} if base_url else dict(os.environ)
            if not base_url:
                env.pop("DATABASE_URL", None)
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child-100k",
                    "--stack-dir",
                    str(stack.dir),
                    "--user",
                    big.address,
                ]
                + ["--password", big.password, "--work", str(work), "--base-url", base_url],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"100k run failed:\n{done.stderr[-3000:]}")
            child = json.loads(done.stdout.strip().splitlines()[-1])
            metrics["peak_rss_mb_100k"] = {"value": round(child["peak_rss_mb"], 1), "unit": "MB"}
            print(
                f"100k: sync process peak {child['own_mb']:.1f} MB; with its parse process's own pages"
                f" (at most {child['parser_mb']:.1f} MB) together at most {child['peak_rss_mb']:.1f} MB"
            )
            metrics["initial_sync_100k_s"] = {"value": round(child["seconds"], 1), "unit": "s"}
            print(f"100k initial sync: {child['seconds']:.1f} s, peak RSS {child['peak_rss_mb']:.1f} MB")
    finally:
        stack.stop()
        if redis_proc is not None:
            from webmail.ops import embedded_redis

            embedded_redis.stop(redis_proc)
        shutil.rmtree(work, ignore_errors=True)

    database = "postgresql" if base_url.startswith("postgres") else "sqlite"
    result = {
        "machine": f"{platform.node()} {platform.platform()} {os.cpu_count()} cpu, python {platform.python_version()}, {database}, load {load_at_start:.1f} at start",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            (["DATABASE_URL=..."] if database != "sqlite" else [])
            + [".venv/bin/python", "bench/imap_sync.py", *sys.argv[1:]]
        ),
        "metrics": metrics,
    }
    # The SQLite run is the file the README's targets read; a PostgreSQL run writes its own beside it.
    path = RESULTS if database == "sqlite" else RESULTS.with_name("imap_sync_postgresql.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
