"""Own the instance directory (var/): generated secrets and the embedded Redis socket path."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    """Return the instance directory, creating it (mode 0700) when absent."""
    path = Path(os.environ.get("WEBMAIL_VAR_DIR") or BASE_DIR / "var").resolve()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def read_or_create_secret(name: str, make: callable) -> str:
    """Return the secret stored in var/NAME, writing a new one (mode 0600) the first time.

    The file is created with O_EXCL so that two processes starting together agree on one value.
    """
    path = var_dir() / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if value:
            return value
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        value = make()
        handle.write(value + "\n")
    return value


def generated_secret_key() -> str:
    """Return var/secret_key, generated once."""
    return read_or_create_secret("secret_key", lambda: secrets.token_urlsafe(50))


def generated_credential_keys() -> str:
    """Return var/credential_keys (one Fernet key), generated once."""
    return read_or_create_secret("credential_keys", lambda: Fernet.generate_key().decode())


def embedded_redis_socket() -> Path:
    """Return the unix socket path of the Redis the app starts for itself."""
    return var_dir() / "redis" / "redis.sock"
