"""Benchmark: first POP3 download of a 10,000-message maildrop against a raw poplib RETR loop.

Run as root from the project directory: .venv/bin/python bench/pop3_sync.py

It starts its own Dovecot (tests.mailstack.stack.MailStack) in a temporary directory, seeds the
maildrop by writing Maildir files directly (owned by the `mail` user), warms Dovecot's index with one
LIST/UIDL session, then in the same run measures
  raw_retr_s        a bare poplib loop: connect (implicit TLS), log in, RETR every message, QUIT;
  first_download_s  do_fetch_pop3 into a fresh SQLite database (the embedded default) with its own
                    private Redis: LIST, UIDL, RETR, parse, thread, compress and store with the ledger.
Target: first_download_s within 2x of raw_retr_s. Results go to bench/results/pop3_sync.json.
Environment: BENCH_MESSAGES (default 10000), BENCH_PROFILE=1 (cProfile the download, top 30).
"""

from __future__ import annotations

import json
import os
import platform
import poplib
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMMAND = ".venv/bin/python bench/pop3_sync.py"
RESULTS = ROOT / "bench" / "results" / "pop3_sync.json"
WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there been one all we their has would when if so no will more can out about "
    "meeting garden invoice project tomorrow report budget schedule review draft please thanks regards"
).split()


def text(rng: random.Random, size: int) -> str:
    """Return about SIZE characters of wrapped prose (lines drawn from a fixed pool: seeding stays fast)."""
    pool = _line_pool()
    count = max(1, size // 70)
    start = rng.randrange(len(pool))
    return "\r\n".join(pool[(start + i * 7) % len(pool)] for i in range(count))


_POOL: list[str] = []


def _line_pool() -> list[str]:
    if not _POOL:
        rng = random.Random(1)
        _POOL.extend(" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 14))) for _ in range(5003))
    return _POOL


def make_message(n: int, rng: random.Random, when: datetime) -> bytes:
    """Return message N: mostly plain text, some HTML alternatives, some with an attachment (~30 KiB mean)."""
    head = (
        f"From: Sender {n % 97} <sender{n % 97}@example.org>\r\n"
        f"To: bench@example.test\r\n"
        f"Subject: {'Re: ' if n % 3 == 0 else ''}Topic {n // 3} {rng.choice(WORDS)}\r\n"
        f"Date: {format_datetime(when)}\r\n"
        f"Message-ID: <bench{n}@example.org>\r\n"
        + (f"In-Reply-To: <bench{n - 1}@example.org>\r\n" if n % 3 == 0 and n else "")
        + "MIME-Version: 1.0\r\n"
    )
    kind = n % 10
    if kind < 7:
        body = text(rng, rng.randint(2_000, 30_000))
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n").encode()
    if kind < 9:
        plain = text(rng, rng.randint(3_000, 12_000))
        html = "<html><body>" + "".join(f"<p>{p}</p>\r\n" for p in plain.split("\r\n")) + "</body></html>"
        return (
            head
            + 'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
            + "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            + plain
            + "\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            + html
            + "\r\n--b1--\r\n"
        ).encode()
    import base64

    blob = base64.encodebytes(rng.randbytes(rng.randint(40_000, 120_000))).replace(b"\n", b"\r\n").decode()
    return (
        head
        + 'Content-Type: multipart/mixed; boundary="b2"\r\n\r\n'
        + "--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + text(rng, 1_500)
        + '\r\n--b2\r\nContent-Type: application/pdf; name="report.pdf"\r\n'
        + 'Content-Disposition: attachment; filename="report.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + blob
        + "--b2--\r\n"
    ).encode()


def seed_maildir(stack, address: str, count: int) -> int:
    """Write COUNT messages into ADDRESS's Maildir (cur/, sizes in the names); return total octets."""
    home = Path(stack.maildir_root) / address
    owner = os.stat(stack.maildir_root)
    for sub in ("", "Maildir", "Maildir/cur", "Maildir/new", "Maildir/tmp"):
        (home / sub).mkdir(exist_ok=True)
        os.chown(home / sub, owner.st_uid, owner.st_gid)
    rng = random.Random(4)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    total = 0
    for n in range(count):
        when = start + timedelta(minutes=17 * n)
        raw = make_message(n, rng, when)
        total += len(raw)
        stamp = int(when.timestamp())
        # S= and W= (physical and CRLF size) spare Dovecot reading every file for LIST (Maildir++).
        path = home / "Maildir" / "cur" / f"{stamp}.M{n}P1.bench,S={len(raw)},W={len(raw)}:2,"
        path.write_bytes(raw)
        os.chown(path, owner.st_uid, owner.st_gid)
        os.utime(path, (stamp, stamp))
    return total


def pop3s(stack, address: str, password: str) -> poplib.POP3_SSL:
    client = poplib.POP3_SSL(stack.host, stack.pop3s_port, context=stack.ssl_context(), timeout=60)
    client.user(address)
    client.pass_(password)
    return client


def raw_retr(stack, address: str, password: str) -> tuple[float, int]:
    """Time connect + login + RETR of every message + QUIT with bare poplib; return (seconds, octets)."""
    poplib._MAXLINE = 1_000_000
    started = time.perf_counter()
    client = pop3s(stack, address, password)
    count, _ = client.stat()
    octets = 0
    for number in range(1, count + 1):
        octets += client.retr(number)[2]
    client.quit()
    return time.perf_counter() - started, octets


def main() -> int:
    if os.geteuid() != 0:
        print("run as root: the mail stack's daemons switch users", file=sys.stderr)
        return 2
    count = int(os.environ.get("BENCH_MESSAGES", "10000"))
    work = Path(tempfile.mkdtemp(prefix="pop3b-", dir="/tmp"))
    work.chmod(0o755)
    var = work / "var"
    # A fresh instance: its own SQLite database and private Redis, whatever the shell has set.
    os.environ.update(WEBMAIL_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="webmail.settings")
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)

    from tests.mailstack.stack import MailStack

    stack = MailStack(work / "stack")
    redis_proc = None
    try:
        stack.start()
        user = stack.add_user("bench@example.test", "bench-password")
        t = time.perf_counter()
        octets = seed_maildir(stack, user.address, count)
        print(f"seeded {count} messages, {octets / 1e6:.0f} MB, in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        client = pop3s(stack, user.address, user.password)  # build Dovecot's index and uidlist once
        client.list()
        client.uidl()
        client.quit()
        print(f"dovecot indexed the maildrop in {time.perf_counter() - t:.1f} s")

        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from webmail import instance
        from webmail.ops import embedded_redis

        redis_proc = embedded_redis.start(instance.embedded_redis_socket())
        call_command("migrate", verbosity=0)
        settings.WEBMAIL_ALLOWED_MAIL_HOSTS = ["127.0.0.1"]
        settings.WEBMAIL_EXTRA_CA_FILE = stack.ca_file

        from django.contrib.auth import get_user_model

        from tests.accounts.factories import make_account
        from webmail.mail.actions.pop3 import do_fetch_pop3
        from webmail.mail.models import Message

        raw_s, raw_octets = raw_retr(stack, user.address, user.password)
        print(f"raw_retr_s        {raw_s:7.2f} s  ({raw_octets / 1e6 / raw_s:.0f} MB/s)")

        person = get_user_model().objects.create_user("bench", "bench@example.test", "x")
        account = make_account(
            person,
            password=user.password,
            email=user.address,
            incoming_protocol="pop3",
            incoming_host="127.0.0.1",
            incoming_port=stack.pop3s_port,
            incoming_security="tls",
            incoming_username=user.address,
        )
        profiler = None
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.perf_counter()
        report = do_fetch_pop3(account.pk)
        download_s = time.perf_counter() - started
        if profiler:
            import pstats

            profiler.disable()
            stats = pstats.Stats(profiler).sort_stats("cumulative")
            stats.print_stats(30)
            stats.print_callees("_store_batch|store_messages")
        stored = Message.objects.filter(account=account).count()
        if report.error or report.new != count or stored != count:
            print(f"download incomplete: {report}, {stored} stored", file=sys.stderr)
            return 1
        ratio = download_s / raw_s
        print(f"first_download_s  {download_s:7.2f} s  ({ratio:.2f}x raw; target within 2x)")

        result = {
            "machine": f"{platform.node()}: {platform.platform()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, SQLite (embedded default), Dovecot POP3 over TLS",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": COMMAND,
            "metrics": {
                "raw_retr_s": {"value": round(raw_s, 3), "unit": "s"},
                "first_download_s": {"value": round(download_s, 3), "unit": "s"},
            },
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {RESULTS.relative_to(ROOT)}")
        return 0
    finally:
        if redis_proc is not None:
            from webmail.ops import embedded_redis

            embedded_redis.stop(redis_proc)
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
