"""Two-factor authentication: TOTP devices (django-otp) and single-use recovery codes."""

from __future__ import annotations

import base64

import segno
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

RECOVERY_CODE_COUNT = 10


def has_two_factor(user: AbstractBaseUser) -> bool:
    """Return whether USER signs in with a code (a confirmed authenticator app)."""
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists()


def pending_device(user: AbstractBaseUser) -> TOTPDevice:
    """Return USER's unconfirmed authenticator (made on first call), shown while setting it up."""
    device = TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def secret_text(device: TOTPDevice) -> str:
    """Return the device's key as the base32 text people type into an authenticator app."""
    encoded = base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def qr_data_uri(device: TOTPDevice) -> str:
    """Return the otpauth:// URL as an SVG QR code in a data: URI (allowed by img-src data:)."""
    return segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2, dark="#111")


@transaction.atomic
def confirm_device(device: TOTPDevice) -> list[str]:
    """Turn DEVICE on, drop other authenticators, and return fresh recovery codes."""
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user_id=device.user_id).exclude(pk=device.pk).delete()
    return new_recovery_codes(device.user)


@transaction.atomic
def new_recovery_codes(user: AbstractBaseUser) -> list[str]:
    """Replace USER's recovery codes with new ones and return them (shown once, then never again)."""
    static, _ = StaticDevice.objects.get_or_create(user=user, name="Recovery codes")
    static.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=static, token=code) for code in codes)
    return codes


def recovery_codes_left(user: AbstractBaseUser) -> int:
    return StaticToken.objects.filter(device__user_id=user.pk).count()


@transaction.atomic
def remove_two_factor(user: AbstractBaseUser) -> None:
    """Delete every authenticator and recovery code of USER."""
    TOTPDevice.objects.filter(user_id=user.pk).delete()
    StaticDevice.objects.filter(user_id=user.pk).delete()
