"""Quotas per person or for everyone: the stored rows, then the settings, decide."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q

from accounts.models import Limits


@dataclass(frozen=True)
class EffectiveLimits:
    """The limits that apply to one person (None: unlimited)."""

    max_accounts: int
    max_cache_bytes: int | None
    max_sends_per_hour: int


def global_limits() -> Limits:
    """Return the row that holds everyone's limits (unsaved and blank when there is none)."""
    return Limits.objects.filter(user__isnull=True).order_by("pk").first() or Limits(user=None)


def effective_limits(user: AbstractBaseUser) -> EffectiveLimits:
    """Return USER's limits: their own row, else the global row, else the settings."""
    rows = {row.user_id: row for row in Limits.objects.filter(Q(user_id=user.pk) | Q(user__isnull=True))}
    own, everyone = rows.get(user.pk), rows.get(None)

    def pick(field: str, default: int) -> int:
        for row in (own, everyone):
            value = getattr(row, field, None) if row is not None else None
            if value is not None:
                return value
        return default

    cache_mb = pick("max_cache_mb", settings.WEBMAIL_MAX_CACHE_MB)
    return EffectiveLimits(
        max_accounts=pick("max_accounts", settings.WEBMAIL_MAX_ACCOUNTS_PER_PERSON),
        max_cache_bytes=cache_mb * 1024 * 1024 if cache_mb else None,
        max_sends_per_hour=pick("max_sends_per_hour", settings.WEBMAIL_SEND_RATE_MESSAGES_PER_HOUR),
    )
