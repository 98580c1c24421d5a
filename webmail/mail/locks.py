"""Per-account locks in Redis with expiry, so two syncs (or a sync and a write-back) never overlap."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import redis
from django.conf import settings

# Delete or extend the key only if it still holds our token (another holder may own it after expiry).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def redis_client() -> redis.Redis:
    """Return a client of the app's Redis."""
    return _client(settings.REDIS_URL)


class LockLost(Exception):
    """The lock expired while its holder was still working."""


class AccountLock:
    """A held lock on one account; extend() it during long work."""

    def __init__(self, key: str, token: str, ttl: int) -> None:
        self.key, self.token, self.ttl = key, token, ttl

    def extend(self) -> None:
        """Push the expiry ttl seconds ahead, or raise LockLost."""
        if not redis_client().eval(_EXTEND, 1, self.key, self.token, self.ttl * 1000):
            raise LockLost(self.key)


def lock_key(account_id: int) -> str:
    return f"webmail:lock:account:{int(account_id)}"


@contextmanager
def account_lock(account_id: int, ttl: int = 120) -> Iterator[AccountLock | None]:
    """Hold the account's lock for the block; yield None (and hold nothing) when someone else has it."""
    key, token = lock_key(account_id), secrets.token_hex(16)
    client = redis_client()
    if not client.set(key, token, nx=True, ex=ttl):
        yield None
        return
    try:
        yield AccountLock(key, token, ttl)
    finally:
        client.eval(_RELEASE, 1, key, token)


def break_lock(account_id: int) -> bool:
    """Remove a stuck lock (operator action); return whether one was held."""
    return bool(redis_client().delete(lock_key(account_id)))


def request_again(account_id: int) -> None:
    """Note that a sync was asked for while one was running, so the running one goes round again."""
    redis_client().set(f"webmail:sync-again:{int(account_id)}", 1, ex=600)


def take_again_request(account_id: int) -> bool:
    """Return and clear the "go round again" note."""
    return bool(redis_client().getdel(f"webmail:sync-again:{int(account_id)}"))
