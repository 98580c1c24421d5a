"""IDLE watchers: long-lived IMAP connections that ask for a sync as soon as a folder changes.

A watcher process (`manage.py watch`) takes accounts by lease from Redis, so that each account is
watched by exactly one watcher; a lease lives LEASE_TTL seconds and is renewed every RENEW_EVERY
seconds, so when a watcher dies its accounts move to a surviving one within a minute. Each watched
folder costs one thread (with a small stack) and one IMAP connection; the thread sleeps in the
kernel until the server speaks, so idle connections cost memory, not CPU. Accounts whose server
lacks IDLE, and POP3 accounts, are left to the periodic sync (beat).

Watchers never write the cache: they only request syncs (Celery tasks on the sync queue).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Q

from accounts.models import AccountState, MailAccount
from webmail.mail.actions.schedule import request_sync
from webmail.mail.actions.sync import open_session
from webmail.mail.locks import redis_client
from webmail.mail.models import Folder, SpecialUse
from webmail.mailcore.errors import MailError

log = logging.getLogger(__name__)

LEASE_TTL = 40  # seconds a lease lives without renewal
RENEW_EVERY = 10  # seconds between renewals and between looks for unwatched accounts
IDLE_RESTART = 25 * 60  # RFC 2177: re-issue IDLE well before the server's 30-minute timeout
RETRY_AFTER = 60  # seconds before a watcher tries again an account whose connection failed
CHECK_EVERY = 15.0  # seconds between looks at the stop flag while idling
MAX_NOTIFY_FOLDERS = 5  # folders besides the Inbox one account may have watched
DEBOUNCE = 0.01  # seconds to gather a burst of changes into one sync request


def lease_key(account_id: int) -> str:
    return f"webmail:watch:lease:{int(account_id)}"


WATCHERS_KEY = "webmail:watch:watchers"  # hash: watcher id -> last heartbeat (unix time)


@dataclass
class Watch:
    """One IDLE connection on one folder of one account."""

    account_id: int
    folder: str
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    wakeups: int = 0


class Watcher:
    """Claim accounts by lease and keep an IDLE connection per watched folder."""

    def __init__(
        self,
        *,
        capacity: int = 500,
        name: str | None = None,
        on_change: Callable[[int, str], None] | None = None,
    ) -> None:
        self.capacity = capacity
        self.id = name or f"{socket.gethostname()}:{os.getpid()}"
        self.on_change = on_change or (lambda account_id, folder: request_sync(account_id, [folder]))
        self.watches: dict[tuple[int, str], Watch] = {}
        self.stopped: list[Watch] = []  # dropped watches whose threads may still be finishing
        self.failed_at: dict[int, float] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    # -- leases ---------------------------------------------------------------------------------

    def accounts_held(self) -> set[int]:
        with self.lock:
            return {account_id for account_id, _ in self.watches}

    def claim(self, account_id: int) -> bool:
        """Take the account's lease; a watcher restarted under the same name takes back its own."""
        client = redis_client()
        if client.set(lease_key(account_id), self.id, nx=True, ex=LEASE_TTL):
            return True
        if client.get(lease_key(account_id)) == self.id.encode():
            return bool(client.set(lease_key(account_id), self.id, xx=True, ex=LEASE_TTL))
        return False

    def renew(self) -> None:
        """Renew every held lease; drop accounts whose lease another watcher took (split brain)."""
        client = redis_client()
        client.hset(WATCHERS_KEY, self.id, int(time.time()))
        for account_id in self.accounts_held():
            holder = client.get(lease_key(account_id))
            if holder is not None and holder.decode() != self.id:
                log.warning("lease of account %s taken by %s: letting go", account_id, holder.decode())
                self.drop(account_id, release=False)
                continue
            client.set(lease_key(account_id), self.id, ex=LEASE_TTL)

    def release_all(self) -> None:
        client = redis_client()
        for account_id in self.accounts_held():
            if client.get(lease_key(account_id)) == self.id.encode():
                client.delete(lease_key(account_id))
        client.hdel(WATCHERS_KEY, self.id)

    # -- what to watch ------------------------------------------------------------------------------

    def candidates(self) -> list[MailAccount]:
        close_old_connections()
        return list(
            MailAccount.objects.filter(incoming_protocol="imap")
            .exclude(state__in=[AccountState.DISABLED, AccountState.AUTH_FAILED])
            .order_by("pk")
        )

    def folders_to_watch(self, account_ids: set[int]) -> dict[int, list[str]]:
        """For each account: its Inbox, then up to MAX_NOTIFY_FOLDERS folders marked "notify"."""
        wanted: dict[int, list[str]] = {account_id: [] for account_id in account_ids}
        rows = (
            Folder.objects.filter(account_id__in=account_ids, selectable=True)
            .filter(Q(special_use=SpecialUse.INBOX) | Q(notify=True))
            .values_list("account_id", "name", "special_use")
        )
        for account_id, name, _use in sorted(rows, key=lambda r: (r[0], r[2] != SpecialUse.INBOX, r[1])):
            if len(wanted[account_id]) <= MAX_NOTIFY_FOLDERS:
                wanted[account_id].append(name)
        return {a: names or ["INBOX"] for a, names in wanted.items()}

    def balance(self) -> None:
        """Claim unwatched accounts up to capacity; follow changes of the folders to watch; let go of
        accounts no longer eligible."""
        eligible = {a.pk: a for a in self.candidates()}
        for account_id in self.accounts_held() - set(eligible):
            self.drop(account_id)
        held = self.accounts_held()
        for account_id, names in self.folders_to_watch(held).items():
            with self.lock:
                current = {f for a, f in self.watches if a == account_id}
                stale = [self.watches.pop((account_id, f)) for f in current - set(names)]
            for watch in stale:
                watch.stop.set()
                self.stopped.append(watch)
            for name in names:
                if name not in current:
                    self.start_watch(account_id, name)
        now = time.monotonic()
        claimed = []
        for account_id in eligible:
            if len(self.watches) + len(claimed) >= self.capacity:
                break
            if account_id in held:
                continue
            if now - self.failed_at.get(account_id, -RETRY_AFTER) < RETRY_AFTER:
                continue
            if self.claim(account_id):
                claimed.append(account_id)
        for account_id, names in self.folders_to_watch(set(claimed)).items():
            for name in names:
                self.start_watch(account_id, name)

    # -- connections ------------------------------------------------------------------------------

    def start_watch(self, account_id: int, folder: str) -> None:
        watch = Watch(account_id, folder)
        watch.thread = threading.Thread(
            target=self._run, args=(watch,), name=f"idle-{account_id}-{folder}", daemon=True
        )
        with self.lock:
            self.watches[(account_id, folder)] = watch
        watch.thread.start()

    def drop(self, account_id: int, release: bool = True) -> None:
        with self.lock:
            keys = [k for k in self.watches if k[0] == account_id]
            watches = [self.watches.pop(k) for k in keys]
        for watch in watches:
            watch.stop.set()
        self.stopped.extend(watches)
        if release and redis_client().get(lease_key(account_id)) == self.id.encode():
            redis_client().delete(lease_key(account_id))

    def _run(self, watch: Watch) -> None:
        try:
            self._idle_loop(watch)
        except MailError as exc:
            log.info("watch of account %s %s ended: %s", watch.account_id, watch.folder, exc)
        except Exception:
            log.exception("watch of account %s %s crashed", watch.account_id, watch.folder)
        finally:
            close_old_connections()
            if not watch.stop.is_set():  # an error, not a stop: try again later, maybe elsewhere
                self.failed_at[watch.account_id] = time.monotonic()
                self.drop(watch.account_id)

    def _idle_loop(self, watch: Watch) -> None:
        account = MailAccount.objects.get(pk=watch.account_id)
        endpoint_session = open_session(account)
        # This thread now only waits on IMAP: give back its database connection (memory, and a
        # server connection slot per watched account on PostgreSQL).
        connections.close_all()
        with endpoint_session as session:
            if not session.has("IDLE"):
                log.info("account %s: server has no IDLE; periodic sync only", account.pk)
                watch.stop.wait(RETRY_AFTER * 10)
                return
            session.select(watch.folder, readonly=True)
            first = True
            while not watch.stop.is_set() and not self.stopping.is_set():
                session.idle_start()
                if first:
                    # Now that IDLE reports every change, sync once for whatever arrived before it.
                    self.on_change(watch.account_id, watch.folder)
                    first = False
                started = time.monotonic()
                changed = False
                while time.monotonic() - started < IDLE_RESTART and not watch.stop.is_set():
                    if session.idle_check(timeout=CHECK_EVERY):
                        changed = True
                        break
                changed = session.idle_done() or changed
                if changed:
                    watch.wakeups += 1
                    time.sleep(DEBOUNCE)
                    self.on_change(watch.account_id, watch.folder)

    # -- the process ------------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Balance and renew until stop() is called."""
        log.info("watcher %s started (capacity %s)", self.id, self.capacity)
        try:
            while not self.stopping.is_set():
                try:
                    self.renew()
                    self.balance()
                except Exception:
                    log.exception("watcher %s: balancing failed; retrying", self.id)
                self.stopping.wait(RENEW_EVERY)
        finally:
            for account_id in list(self.accounts_held()):
                self.drop(account_id)
            self.release_all()
            log.info("watcher %s stopped", self.id)

    def stop(self) -> None:
        self.stopping.set()


def watcher_capacity() -> int:
    return int(getattr(settings, "WEBMAIL_WATCHER_CAPACITY", 500))
