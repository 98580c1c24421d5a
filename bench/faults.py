"""Fault drills against the local cluster: kill, restart and cut things, then prove nothing was lost.

Run as root: `.venv/bin/python bench/faults.py [--only NAME ...] [--timeout 150]`. It starts, in a
temporary directory: a private PostgreSQL (initdb + pg_ctl as the postgres user; when that is not
possible, a fresh database on the server of DATABASE_URL, and the PostgreSQL restart is not run), a
private redis-server on a TCP port (append-only file on, as a broker should have), its own Dovecot +
Postfix (tests.mailstack.stack.MailStack), and `manage.py cluster` (2 web, 2 sync, 1 send, 1 push,
2 watchers, beat). Each fault uses fresh mailboxes and people. At its end it checks that the cache
equals the server (UIDs and flags of every folder, over a separate IMAP connection) and that every
message sent arrived exactly once (counted by Message-ID in the recipient's INBOX), and it times the
recovery from the fault to that state. Results go to bench/results/faults.json.

Settings changed from the defaults, to keep the drill bounded: WEBMAIL_SYNC_LOCK_TTL=20 (120) so
a dead worker's account lock expires sooner, WEBMAIL_UNDO_SEND_SECONDS=0 (10), and the outbox
lease (webmail.compose.actions.outbox.LEASE_SECONDS, 150 s) of a message whose worker was killed is
expired by the drill instead of waited for; the table adds the lease back to the time to recover.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.imap_sync import seed_maildir, small_message  # noqa: E402
from bench.services import (  # noqa: E402
    BenchDatabase,
    Cluster,
    PrivatePostgres,
    PrivateRedis,
    cluster_env,
    healthy,
    log,
    wait_until,
)
from tests.mailstack.stack import MailStack, MailUser  # noqa: E402

SYSTEM_FLAGS = {"\\Seen", "\\Flagged", "\\Answered", "\\Draft", "\\Deleted"}


class Proxy:
    """A TCP proxy that can slow the client's bytes and cut connections after some server bytes."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.delay = 0.0  # seconds before forwarding each client chunk
        self.cut_after: int | None = None  # server->client bytes after which a connection is cut
        self.cuts_left = 0
        self.cuts = 0
        self.conns: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        self.conns |= {client, server}
        sent = [0]

        def pump(src: socket.socket, dst: socket.socket, downstream: bool) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    if not downstream and self.delay:
                        time.sleep(self.delay)
                    dst.sendall(data)
                    if downstream:
                        sent[0] += len(data)
                        if self.cut_after is not None and self.cuts_left > 0 and sent[0] > self.cut_after:
                            self.cuts_left -= 1
                            self.cuts += 1
                            break
            except OSError:
                pass
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

        threading.Thread(target=pump, args=(client, server, False), daemon=True).start()
        pump(server, client, True)


# -- the cluster --------------------------------------------------------------------------------


class Drill:
    """Shared helpers of the fault scenarios."""

    def __init__(
        self, stack: MailStack, cluster: Cluster, pg: PrivatePostgres | None, redis: PrivateRedis
    ) -> None:
        self.stack, self.cluster, self.pg, self.redis = stack, cluster, pg, redis

    def mailbox(self, prefix: str) -> MailUser:
        return self.stack.add_user(f"{prefix}-{secrets.token_hex(4)}@example.test", secrets.token_urlsafe(10))

    def account(self, user: MailUser, *, imap_port: int | None = None, smtp_port: int | None = None):  # type: ignore[no-untyped-def]
        from django.contrib.auth import get_user_model

        from accounts.models import Identity, MailAccount

        name = user.address.split("@")[0]
        person = get_user_model().objects.create_user(name, user.address, "x")
        account = MailAccount(
            user=person,
            name=name,
            email=user.address,
            incoming_host="127.0.0.1",
            incoming_port=imap_port or self.stack.imaps_port,
            incoming_security="tls",
            incoming_username=user.address,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port or self.stack.submission_port,
            smtp_security="starttls",
            smtp_username=user.address,
        )
        account.set_incoming_password(user.password)
        account.save()
        Identity.objects.create(account=account, email=user.address, display_name=name, is_default=True)
        return account

    def deliver(self, user: MailUser, n: int, tag: str) -> list[str]:
        ids = []
        for i in range(n):
            mid = make_msgid(domain="faults.test")
            raw = (
                f"From: outside@example.org\r\nTo: {user.address}\r\nSubject: {tag} {i}\r\n"
                f"Date: {format_datetime(datetime.now(UTC))}\r\nMessage-ID: {mid}\r\n\r\nArrived during {tag}.\r\n"
            ).encode()
            self.stack.deliver_lmtp(user.address, raw)
            ids.append(mid)
        return ids

    def queue_sends(self, account, rcpt: MailUser, n: int, tag: str) -> list[int]:  # type: ignore[no-untyped-def]
        from webmail.compose.actions import drafts, outbox

        identity = account.identities.get()
        ids = []
        for i in range(n):
            draft = drafts.do_create(account.user, identity)
            drafts.do_update_draft(
                draft,
                identity,
                {"to": rcpt.address, "subject": f"{tag} {i}", "body_text": f"Message {i} of {tag}.\n" * 200},
            )
            ids.append(outbox.do_queue_send(draft, delay=0).pk)
        return ids

    def sync(self, account) -> None:  # type: ignore[no-untyped-def]
        from webmail.mail.tasks import sync_account

        sync_account.delay(account.pk)

    # -- checks

    def server_state(self, user: MailUser) -> dict[str, dict[int, frozenset[str]]]:
        client = self.stack.imap_client(user)
        try:
            state = {}
            for flags, _delim, name in client.list_folders():
                if b"\\Noselect" in flags or b"\\NonExistent" in flags:
                    continue
                client.select_folder(name, readonly=True)
                uids = client.search("ALL")
                got: dict[int, frozenset[str]] = {}
                for start in range(0, len(uids), 2000):
                    for uid, data in client.fetch(uids[start : start + 2000], ["FLAGS"]).items():
                        got[uid] = frozenset(f.decode() for f in data[b"FLAGS"]) & SYSTEM_FLAGS
                state[name] = got
            return state
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def cache_state(self, account) -> dict[str, dict[int, frozenset[str]]]:  # type: ignore[no-untyped-def]
        from django.db import close_old_connections

        from webmail.mail.models import Folder, Message

        close_old_connections()
        state: dict[str, dict[int, frozenset[str]]] = {
            f.name: {} for f in Folder.objects.filter(account=account, selectable=True, is_local=False)
        }
        names = dict(Folder.objects.filter(account=account).values_list("pk", "name"))
        rows = Message.objects.filter(account=account, uid__gt=0, folder__is_local=False).values_list(
            "folder_id", "uid", "seen", "flagged", "answered", "draft", "deleted"
        )
        for folder_id, uid, *bits in rows:
            flags = {
                f
                for f, on in zip(
                    ("\\Seen", "\\Flagged", "\\Answered", "\\Draft", "\\Deleted"), bits, strict=True
                )
                if on
            }
            state.setdefault(names[folder_id], {})[uid] = frozenset(flags)
        return state

    def compare(self, account, user: MailUser) -> dict[str, int]:  # type: ignore[no-untyped-def]
        """Messages on the server missing from the cache, extra in the cache, and flag mismatches."""
        server, cache = self.server_state(user), self.cache_state(account)
        missing = extra = flags = 0
        for name in set(server) | set(cache):
            s, c = server.get(name, {}), cache.get(name, {})
            missing += len(set(s) - set(c))
            extra += len(set(c) - set(s))
            flags += sum(1 for uid in set(s) & set(c) if s[uid] != c[uid])
        return {
            "missing": missing,
            "extra": extra,
            "flag_mismatches": flags,
            "server_messages": sum(map(len, server.values())),
        }

    def converged(self, account, user: MailUser) -> bool:  # type: ignore[no-untyped-def]
        d = self.compare(account, user)
        return d["missing"] == d["extra"] == d["flag_mismatches"] == 0 and self.cache_duplicates(account) == 0

    def cache_duplicates(self, account) -> int:  # type: ignore[no-untyped-def]
        from django.db.models import Count

        from webmail.mail.models import Message

        rows = (
            Message.objects.filter(account=account, uid__gt=0)
            .values("folder_id", "uid")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
        return sum(r["n"] - 1 for r in rows)

    def arrivals(self, rcpt: MailUser, message_ids: list[str]) -> dict[str, int]:
        client = self.stack.imap_client(rcpt)
        try:
            client.select_folder("INBOX", readonly=True)
            return {mid: len(client.search(["HEADER", "Message-ID", mid])) for mid in message_ids}
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def outbox_report(self, ids: list[int], rcpt: MailUser) -> dict[str, Any]:
        from django.db import close_old_connections

        from webmail.compose.models import OutgoingMessage

        close_old_connections()
        sent = list(
            OutgoingMessage.objects.filter(pk__in=ids, state="sent").values_list("message_id", flat=True)
        )
        # Accepted (250) is handed over, not yet in the mailbox: give the MTA a moment, and when it
        # deferred the delivery (its LMTP target was down) ask it to run its queue now instead of
        # waiting for its next scheduled run (minutes), as an operator would.
        flushed = False
        if not wait_until(lambda: all(self.arrivals(rcpt, sent).values()), 15, 0.5):
            subprocess.run(["postqueue", "-c", str(self.stack.dir / "postfix"), "-f"], capture_output=True)
            flushed = True
            wait_until(lambda: all(self.arrivals(rcpt, sent).values()), 30, 0.5)
        rows = list(
            OutgoingMessage.objects.filter(pk__in=ids).values(
                "pk", "state", "uncertain", "message_id", "attempts"
            )
        )
        counts = self.arrivals(rcpt, [r["message_id"] for r in rows])
        sent_missing = sum(1 for r in rows if r["state"] == "sent" and counts[r["message_id"]] == 0)
        silent = sum(1 for r in rows if r["state"] not in ("sent", "failed") and counts[r["message_id"]] == 0)
        uncertain_arrived = sum(1 for r in rows if r["uncertain"] and counts[r["message_id"]] > 0)
        uncertain_missing = sum(1 for r in rows if r["uncertain"] and counts[r["message_id"]] == 0)
        return {
            "states": {s: sum(1 for r in rows if r["state"] == s) for s in {r["state"] for r in rows}},
            "arrived_once": sum(1 for c in counts.values() if c == 1),
            "duplicates": sum(max(0, c - 1) for c in counts.values()),
            # Lost: the outbox says sent but nothing arrived, or it is gone without the person being told.
            "lost": sent_missing,
            "unsettled": silent,
            "uncertain_arrived": uncertain_arrived,
            "uncertain_not_arrived": uncertain_missing,
            "mta_queue_flushed": flushed,
        }

    def outbox_settled(self, ids: list[int]) -> bool:
        from django.db import close_old_connections

        from webmail.compose.models import OutgoingMessage

        close_old_connections()
        return not OutgoingMessage.objects.filter(pk__in=ids).exclude(state__in=["sent", "failed"]).exists()

    def sync_progress(self, account) -> int:  # type: ignore[no-untyped-def]
        from django.db import close_old_connections

        from webmail.mail.models import SyncState

        close_old_connections()
        return SyncState.objects.filter(pk=account.pk).values_list("progress_done", flat=True).first() or 0

    def node_running(self, task: str, account_id: int) -> str | None:
        from webmail.celery import app

        active = app.control.inspect(timeout=1).active() or {}
        for node, tasks in active.items():
            for t in tasks:
                if t.get("name") == task and (t.get("args") or [None])[0] == account_id:
                    return node
        return None

    def web_errors_during(self, seconds: float) -> tuple[int, int]:
        """Hit /healthz on every web process for SECONDS; return (requests, failures)."""
        urls = self.cluster.state()["web_urls"]
        total = failed = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for url in urls:
                total += 1
                failed += not healthy(url)
            time.sleep(0.1)
        return total, failed


# -- the faults ---------------------------------------------------------------------------------


def row(fault: str, saw: str, lost: int, dup: int, recover: float | None, **extra: Any) -> dict[str, Any]:
    return {
        "fault": fault,
        "user_saw": saw,
        "messages_lost": lost,
        "messages_duplicated": dup,
        "time_to_recover_s": None if recover is None else round(recover, 1),
        **extra,
    }


def settle_sync(
    drill: Drill, account, user: MailUser, t0: float, timeout: float, feed: bool = True
) -> float | None:  # type: ignore[no-untyped-def]
    """Wait until cache == server; while waiting, mail keeps arriving every 10 s (as it does)."""
    last_feed = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if drill.converged(account, user):
            return time.monotonic() - t0
        if feed and time.monotonic() - last_feed > 10:
            drill.deliver(user, 1, "arrival")
            last_feed = time.monotonic()
        time.sleep(0.5)
    return None


def kill_sync_worker(drill: Drill, timeout: float) -> dict[str, Any]:
    user = drill.mailbox("killsync")
    seed_maildir(drill.stack, user, 3000, lambda n, _rng, when: small_message(n, when))
    account = drill.account(user)
    drill.sync(account)
    if not wait_until(lambda: drill.sync_progress(account) >= 300, 60, 0.05):
        return row(
            "SIGKILL a sync worker mid-initial-sync", "sync never started", 0, 0, None, error="no progress"
        )
    node = wait_until(lambda: drill.node_running("sync.account", account.pk), 10, 0.05)
    name = (node or "sync-1@").split("@")[0]
    done_before = drill.sync_progress(account)
    old = drill.cluster.kill(name)
    t0 = time.monotonic()
    log(f"killed {name} (pid group {old}) at {done_before}/3000 messages")
    restarted = drill.cluster.wait_restarted(name, old)
    recovered = settle_sync(drill, account, user, t0, timeout)
    d = drill.compare(account, user)
    return row(
        "SIGKILL a sync worker mid-initial-sync",
        f"Inbox showed {done_before} of 3000 messages, then stopped filling; complete after "
        + (f"{recovered:.0f} s" if recovered else f"more than {timeout:.0f} s"),
        d["missing"],
        d["extra"] + drill.cache_duplicates(account),
        recovered,
        worker_restarted=restarted,
        detail=d,
    )


def kill_send_worker(drill: Drill, timeout: float) -> dict[str, Any]:
    from django.utils import timezone

    from webmail.compose.models import OutgoingMessage

    sender, rcpt = drill.mailbox("killsend"), drill.mailbox("rcpt")
    proxy = Proxy(drill.stack.submission_port)
    proxy.delay = 0.15  # each submission takes about a second: a kill lands in the middle of one
    account = drill.account(sender, smtp_port=proxy.port)
    ids = drill.queue_sends(account, rcpt, 8, "killsend")
    caught = wait_until(
        lambda: (
            OutgoingMessage.objects.filter(pk__in=ids, state="sending")
            .values_list("pk", "data_started_at")
            .first()
        ),
        60,
        0.02,
    )
    old = drill.cluster.kill("send-1")
    t0 = time.monotonic()
    log(f"killed send-1 with message {caught} in submission")
    proxy.delay = 0.0
    drill.cluster.wait_restarted("send-1", old)
    from webmail.compose.actions.outbox import LEASE_SECONDS

    # The killed attempt holds a lease: expire it instead of waiting (added back below).
    wait_until(lambda: drill.outbox_settled([i for i in ids if not caught or i != caught[0]]), timeout / 2)
    OutgoingMessage.objects.filter(pk__in=ids, state="sending").update(lease_expires_at=timezone.now())
    t1 = time.monotonic()
    settled = wait_until(lambda: drill.outbox_settled(ids), timeout)
    recovered = (time.monotonic() - t1 + LEASE_SECONDS) if settled else None
    time.sleep(1)
    rep = drill.outbox_report(ids, rcpt)
    saw = (
        f"{len(ids) - 1} of {len(ids)} sent within {t1 - t0:.0f} s of the kill; the interrupted one showed "
        f"'Sending' until its lease ran out, then the outbox ended {rep['states']}"
    )
    if rep["uncertain_arrived"] or rep["uncertain_not_arrived"]:
        saw += " ('Not sent: not certain whether it was delivered' on the interrupted one)"
    return row(
        "SIGKILL the send worker mid-submission",
        saw,
        rep["lost"] + rep["unsettled"],
        rep["duplicates"],
        recovered,
        detail={
            **rep,
            "killed_message": list(caught) if caught else None,
            "others_done_s": round(t1 - t0, 1),
        },
        note=f"time includes the {LEASE_SECONDS} s outbox lease, expired by the drill",
    )


def kill_watcher(drill: Drill, timeout: float) -> dict[str, Any]:
    from webmail.mail.locks import redis_client
    from webmail.mail.watcher import lease_key

    user = drill.mailbox("killwatch")
    drill.deliver(user, 5, "before")
    account = drill.account(user)
    holder = wait_until(lambda: redis_client().get(lease_key(account.pk)), 60)
    if not holder or not wait_until(lambda: drill.converged(account, user), 60):
        return row("SIGKILL a watcher", "not watched", 0, 0, None, error="no lease or no first sync")
    name = "watch-" + holder.decode().rsplit("-", 1)[1]
    time.sleep(2)  # IDLE is entered
    drill.cluster.kill(name)
    t0 = time.monotonic()
    time.sleep(1)
    mids = drill.deliver(user, 1, "after-watcher-kill")
    recovered = settle_sync(drill, account, user, t0, timeout, feed=False)
    d = drill.compare(account, user)
    new_holder = redis_client().get(lease_key(account.pk))
    return row(
        "SIGKILL a watcher",
        f"new mail appeared after {recovered:.0f} s instead of about 1 s"
        if recovered
        else "new mail did not appear",
        d["missing"],
        d["extra"],
        recovered,
        detail={
            **d,
            "lease_before": holder.decode(),
            "lease_after": new_holder.decode() if new_holder else None,
            "message": mids[0],
        },
    )


def restart_redis(drill: Drill, timeout: float) -> dict[str, Any]:
    user, sender, rcpt = drill.mailbox("redis"), drill.mailbox("redissend"), drill.mailbox("rcpt")
    account = drill.account(user)
    proxy = Proxy(drill.stack.submission_port)
    proxy.delay = 0.05  # keep the sends in flight while Redis goes away
    send_account = drill.account(sender, smtp_port=proxy.port)
    if not wait_until(lambda: drill.converged(account, user), 60):
        return row("Restart Redis", "first sync did not finish", 0, 0, None, error="setup")
    ids = drill.queue_sends(send_account, rcpt, 5, "redis")
    time.sleep(0.5)
    drill.redis.stop()
    t0 = time.monotonic()
    log("redis stopped")
    errors = drill.web_errors_during(1.0)
    mids = drill.deliver(user, 3, "during-redis-restart")
    drill.redis.start()
    proxy.delay = 0.0
    log(f"redis back after {time.monotonic() - t0:.1f}s")
    healthy_after = wait_until(lambda: all(healthy(u) for u in drill.cluster.state()["web_urls"]), timeout)
    t_health = time.monotonic() - t0 if healthy_after else None
    settled = wait_until(lambda: drill.outbox_settled(ids) and drill.converged(account, user), timeout, 0.5)
    recovered = time.monotonic() - t0 if settled else None
    rep = drill.outbox_report(ids, rcpt)
    d = drill.compare(account, user)
    return row(
        "Restart Redis (private redis-server, append-only file)",
        f"/healthz 503 on {errors[1]} of {errors[0]} probes while down; healthy {t_health and round(t_health, 1)} s "
        f"after the stop; sends {rep['states']}",
        d["missing"] + rep["lost"] + rep["unsettled"],
        d["extra"] + rep["duplicates"],
        recovered,
        detail={"sync": d, "send": rep, "arrived_during": mids},
    )


def restart_postgres(drill: Drill, timeout: float) -> dict[str, Any]:
    if drill.pg is None:
        return row(
            "Restart PostgreSQL during sync",
            "not run",
            0,
            0,
            None,
            status="not run",
            note="no private PostgreSQL could be started; the machine's shared server must not be restarted",
        )
    user = drill.mailbox("pgsync")
    seed_maildir(drill.stack, user, 3000, lambda n, _rng, when: small_message(n, when))
    account = drill.account(user)
    drill.sync(account)
    if not wait_until(lambda: drill.sync_progress(account) >= 300, 60, 0.05):
        return row("Restart PostgreSQL during sync", "sync never started", 0, 0, None, error="no progress")
    t0 = time.monotonic()
    drill.pg.restart()
    log(f"postgres restarted in {time.monotonic() - t0:.1f}s")
    from django.db import connections

    connections.close_all()
    errors = drill.web_errors_during(2.0)
    recovered = settle_sync(drill, account, user, t0, timeout)
    d = drill.compare(account, user)
    from webmail.ops import dlq

    dead = [e for e in dlq.entries() if e.get("args") and e["args"][0] == account.pk]
    return row(
        "Restart PostgreSQL during sync",
        f"/healthz failed on {errors[1]} of {errors[0]} probes in the 2 s after the restart; the Inbox stopped filling, "
        + (f"complete after {recovered:.0f} s" if recovered else "not complete"),
        d["missing"],
        d["extra"] + drill.cache_duplicates(account),
        recovered,
        detail={**d, "dead_letters": len(dead)},
    )


def restart_dovecot_and_smtp(drill: Drill, timeout: float, which: str) -> dict[str, Any]:
    from tests.mailstack.stack import _pid_alive

    user, sender, rcpt = drill.mailbox(f"re{which}"), drill.mailbox(f"re{which}send"), drill.mailbox("rcpt")
    account = drill.account(user)
    send_account = drill.account(sender)
    if not wait_until(lambda: drill.converged(account, user), 60):
        return row(f"Restart {which}", "first sync did not finish", 0, 0, None, error="setup")
    time.sleep(2)
    stack = drill.stack
    pidfile, hint = {
        "dovecot": (stack.dir / "run" / "dovecot" / "master.pid", "dovecot"),
        "postfix": (stack.dir / "postfix-spool" / "pid" / "master.pid", "postfix"),
    }[which]
    pid = _pid_alive(pidfile, hint)
    ids = drill.queue_sends(send_account, rcpt, 3, f"restart-{which}")
    t0 = time.monotonic()
    if pid:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), 15, 0.05)
    log(f"{which} stopped")
    time.sleep(1)
    if which == "dovecot":
        stack._start_dovecot()
    else:
        stack._start_smtp()
    log(f"{which} back after {time.monotonic() - t0:.1f}s")
    mids = drill.deliver(user, 1, f"after-{which}-restart")
    settled = wait_until(lambda: drill.outbox_settled(ids) and drill.converged(account, user), timeout, 0.5)
    recovered = time.monotonic() - t0 if settled else None
    rep = drill.outbox_report(ids, rcpt)
    d = drill.compare(account, user)
    return row(
        f"Restart {'Dovecot (IMAP)' if which == 'dovecot' else 'Postfix (SMTP)'}",
        (f"sends and new mail settled {recovered:.0f} s after the stop; " if recovered else "not settled; ")
        + f"sends {rep['states']}"
        + ("; the MTA had deferred some deliveries (queue flushed)" if rep["mta_queue_flushed"] else ""),
        d["missing"] + rep["lost"] + rep["unsettled"],
        d["extra"] + rep["duplicates"],
        recovered,
        detail={"sync": d, "send": rep, "message": mids[0]},
    )


def drop_imap_mid_fetch(drill: Drill, timeout: float) -> dict[str, Any]:
    from bench.imap_sync import realistic_message

    user = drill.mailbox("dropfetch")
    seed_maildir(drill.stack, user, 400, realistic_message)
    proxy = Proxy(drill.stack.imaps_port)
    proxy.cut_after = 2_000_000
    proxy.cuts_left = 2
    account = drill.account(user, imap_port=proxy.port)
    t0 = time.monotonic()
    drill.sync(account)
    wait_until(lambda: proxy.cuts >= 1, 60, 0.05)
    log(f"cut {proxy.cuts} IMAP connection(s) mid-FETCH")
    recovered = settle_sync(drill, account, user, t0, timeout, feed=False)
    from webmail.mail.models import SyncState

    d = drill.compare(account, user)
    errors = SyncState.objects.filter(pk=account.pk).values_list("failures", "last_error").first()
    return row(
        "Drop IMAP connections mid-FETCH (a proxy cuts the first 2 after 2 MB)",
        f"sync stopped with '{(errors or (0, ''))[1] or 'a network error'}', resumed by itself; complete after "
        + (f"{recovered:.0f} s" if recovered else f"more than {timeout:.0f} s"),
        d["missing"],
        d["extra"] + drill.cache_duplicates(account),
        recovered,
        detail={**d, "cuts": proxy.cuts},
    )


FAULTS: dict[str, Callable[[Drill, float], dict[str, Any]]] = {
    "sync-worker": kill_sync_worker,
    "send-worker": kill_send_worker,
    "watcher": kill_watcher,
    "redis": restart_redis,
    "postgres": restart_postgres,
    "dovecot": lambda d, t: restart_dovecot_and_smtp(d, t, "dovecot"),
    "smtp": lambda d, t: restart_dovecot_and_smtp(d, t, "postfix"),
    "imap-drop": drop_imap_mid_fetch,
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", choices=sorted(FAULTS), help="run only these faults")
    parser.add_argument("--timeout", type=float, default=150, help="seconds each fault may take to recover")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    parser.add_argument("--no-write", action="store_true", help="print the results, do not write the file")
    parser.add_argument(
        "--merge", action="store_true", help="replace only these faults' rows in the existing results file"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root: the mail stack and the private PostgreSQL need it")

    work = Path(tempfile.mkdtemp(prefix="faults-", dir="/tmp"))
    work.chmod(0o755)
    database = BenchDatabase(work, "faults")
    db_url = database.start()
    db_note = database.note
    redis = PrivateRedis(work)
    stack = MailStack(work / "stack")
    cluster: Cluster | None = None
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        redis.start()
        stack.start()
        env = cluster_env(
            work,
            db_url,
            redis.url,
            WEBMAIL_ALLOWED_MAIL_HOSTS="127.0.0.1,localhost",
            WEBMAIL_EXTRA_CA_FILE=stack.ca_file,
            WEBMAIL_CONNECT_TIMEOUT="5",
            WEBMAIL_UNDO_SEND_SECONDS="0",
            WEBMAIL_SYNC_LOCK_TTL="20",
            WEBMAIL_SEND_RATE_MESSAGES_PER_HOUR="1000",
            WEBMAIL_SEND_RATE_RECIPIENTS_PER_HOUR="1000",
            LOG_LEVEL="INFO",
        )
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        cluster = Cluster(work, env)
        cluster.start()
        log(f"cluster up: {cluster.state()['web_urls']}")
        drill = Drill(stack, cluster, database.pg, redis)
        for name in args.only or list(FAULTS):
            log(f"fault: {name}")
            t = time.monotonic()
            from django.db import connections

            connections.close_all()  # a previous fault may have broken this process's connection
            try:
                result = FAULTS[name](drill, args.timeout)
            except Exception as exc:
                result = row(
                    name, "the drill itself failed", 0, 0, None, error=f"{type(exc).__name__}: {exc}"
                )
            result["drill_s"] = round(time.monotonic() - t, 1)
            log(json.dumps(result, default=str))
            rows.append(result)
    finally:
        if cluster:
            cluster.stop()
        stack.stop()
        redis.stop()
        database.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    out = ROOT / "bench" / "results" / "faults.json"
    command = "sudo .venv/bin/python bench/faults.py" + (
        f" --only {' '.join(args.only)}" if args.only else ""
    )
    if args.merge and out.exists():
        previous = json.loads(out.read_text())
        fresh = {r["fault"]: r for r in rows}
        merged = [fresh.pop(r["fault"], r) for r in previous["table"]]
        rows = merged + list(fresh.values())
        command = previous["command"] + f"; then {command} --merge"
    ran = [r for r in rows if r.get("status") != "not run"]
    recoveries = [r["time_to_recover_s"] for r in ran if r["time_to_recover_s"] is not None]
    result = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, {platform.python_implementation()} {platform.python_version()}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "metrics": {
            "faults_run": {"value": len(ran), "unit": "faults"},
            "messages_lost": {"value": sum(r["messages_lost"] for r in ran), "unit": "messages"},
            "messages_duplicated": {"value": sum(r["messages_duplicated"] for r in ran), "unit": "messages"},
            "max_recovery_s": {"value": max(recoveries) if recoveries else None, "unit": "s"},
            "unrecovered_faults": {
                "value": sum(1 for r in ran if r["time_to_recover_s"] is None),
                "unit": "faults",
            },
        },
        "table": rows,
        "notes": f"Database: {db_note}. Redis: private redis-server with appendonly yes. Cluster: 2 web, 2 sync, "
        "1 send, 1 push, 2 watchers, beat (manage.py cluster). WEBMAIL_SYNC_LOCK_TTL=20 instead of 120; undo delay 0. "
        f"Whole drill {time.monotonic() - started:.0f} s.",
    }
    text = json.dumps(result, indent=2, default=str) + "\n"
    print(text)
    if not args.no_write:
        out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
