"""Crash safety: a sync interrupted mid-folder (exception, SIGKILL, dropped connection) resumes exactly."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.mail.conftest import append_many, assert_cache_matches, message
from webmail.mail.actions import sync
from webmail.mail.actions.sync import do_sync_account
from webmail.mail.locks import lock_key, redis_client
from webmail.mail.models import Folder, Message, SyncState

pytestmark = [pytest.mark.mailstack]
ROOT = Path(__file__).resolve().parent.parent.parent


class Interrupted(BaseException):
    """Stands for a worker dying: not an Exception, so nothing in the sync may swallow it."""


@pytest.mark.django_db
def test_sync_interrupted_mid_folder_resumes_without_loss_or_duplicates(monkeypatch, account, server):
    monkeypatch.setattr(sync, "BATCH_MESSAGES", 7)
    append_many(server, "INBOX", [message(i) for i in range(40)])
    calls = []

    def die_on_third_batch(name: str, done: int, total: int) -> None:
        calls.append((name, done, total))
        if len(calls) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        do_sync_account(account.pk, progress=die_on_third_batch)

    inbox = Folder.objects.get(account=account, name="INBOX")
    assert Message.objects.filter(folder=inbox).count() == 21 == len(calls) * 7
    assert inbox.synced_uid == 21
    assert not redis_client().exists(lock_key(account.pk))  # released by the context manager
    state = SyncState.objects.get(account=account)
    assert (state.progress_done, state.progress_total) == (21, 40)
    server.select_folder("INBOX")
    server.add_flags([2, 30], [b"\\Seen"])  # one stored, one not yet
    server.delete_messages([5, 35])
    server.expunge()

    report = do_sync_account(account.pk)

    assert report.error == "" and report.new == 18  # UIDs 22..40 but 35
    assert_cache_matches(account, server)
    state.refresh_from_db()
    assert (state.progress_done, state.progress_total) == (0, 0)


def _run(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


SETUP = """
import django
django.setup()
from django.contrib.auth import get_user_model
from tests.accounts.factories import make_account
"""


def test_sync_killed_by_sigkill_resumes_exactly(tmp_path, mailstack, remote_user, settings, mail_settings):
    """A worker process killed with SIGKILL after a few batches; the next run completes the cache."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webmail.settings",
        "WEBMAIL_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/kill.sqlite3",
        "REDIS_URL": settings.REDIS_URL,
        "WEBMAIL_ALLOWED_MAIL_HOSTS": "127.0.0.1",
        "WEBMAIL_EXTRA_CA_FILE": mailstack.ca_file,
    }
    client = mailstack.imap_client(remote_user)
    append_many(client, "INBOX", [message(i, size=2000) for i in range(300)])
    account_id = int(
        _run(
            SETUP
            + f"""
from django.core.management import call_command
call_command("migrate", verbosity=0)
user = get_user_model().objects.create_user("k", "k@example.test", "x")
acc = make_account(user, password={remote_user.password!r}, email={remote_user.address!r},
    incoming_host="127.0.0.1", incoming_port={mailstack.imaps_port}, incoming_username={remote_user.address!r})
print(acc.pk)
""",
            env,
        )
    )
    redis_client().delete(lock_key(account_id))
    code = (
        "import django, sys; django.setup()\n"
        "from webmail.mail.actions import sync; sync.BATCH_MESSAGES = 10\n"
        "from django.core.management import call_command\n"
        f"call_command('sync_account', '{account_id}', '--folder', 'INBOX')\n"
    )
    proc = subprocess.Popen([sys.executable, "-u", "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE)
    seen = b""
    deadline = time.monotonic() + 90
    while b"INBOX: 50/300" not in seen and time.monotonic() < deadline:
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert b"INBOX: 50/300" in seen, seen[-500:]

    def check() -> list[tuple[int, str]]:
        with sqlite3.connect(tmp_path / "kill.sqlite3") as db:
            return db.execute(
                "SELECT uid, message_id FROM mail_message WHERE account_id = ?", (account_id,)
            ).fetchall()

    partial = check()
    assert 50 <= len(partial) < 300
    assert len({uid for uid, _ in partial}) == len(partial)
    # The dead worker's lock is still in Redis until its expiry: an operator (or time) frees it.
    assert redis_client().exists(lock_key(account_id))
    redis_client().pexpire(lock_key(account_id), 1)
    time.sleep(0.01)

    out = subprocess.run(
        [sys.executable, "manage.py", "sync_account", str(account_id)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = check()
    client.select_folder("INBOX", readonly=True)
    assert sorted(uid for uid, _ in rows) == sorted(client.search("ALL"))
    assert sorted(mid for _, mid in rows) == sorted(f"m{i}@test" for i in range(300))
    client.logout()


class CuttingProxy:
    """A TCP proxy to the IMAP port that drops both sides after LIMIT bytes from the server."""

    def __init__(self, target: tuple[str, int], limit: int | None) -> None:
        self.target, self.limit = target, limit
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(conn, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, conn, self.limit), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    dst.sendall(data[: limit - sent])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.sock.close()


@pytest.mark.django_db
def test_connection_dropped_mid_fetch_is_recorded_and_the_next_run_completes(mailstack, account, server):
    append_many(server, "INBOX", [message(i, size=20_000) for i in range(60)])
    proxy = CuttingProxy((mailstack.host, mailstack.imaps_port), limit=600_000)
    account.incoming_port = proxy.port
    account.save()

    report = do_sync_account(account.pk)

    proxy.close()
    account.refresh_from_db()
    assert report.error
    assert account.state == "connection_failing"
    assert "closed the connection" in account.state_reason or "connection" in account.state_reason.lower()
    state = SyncState.objects.get(account=account)
    assert state.failures == 1 and state.next_attempt_at is not None
    assert state.last_error == account.state_reason
    stored = Message.objects.filter(account=account, folder__name="INBOX").count()
    assert stored < 60

    account.incoming_port = mailstack.imaps_port
    account.save()
    report = do_sync_account(account.pk)

    assert report.error == ""
    assert_cache_matches(account, server)
    account.refresh_from_db()
    assert account.state == "ok" and account.state_reason == ""
    assert SyncState.objects.get(account=account).failures == 0
