"""Settings come from the environment, strictly, with generated secrets under var/."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from webmail import settings as project_settings

ROOT = Path(__file__).resolve().parents[2]


def load_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with ENV and print a few values."""
    clean = {
        k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DEBUG"}
    }
    clean.update(WEBMAIL_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="webmail.settings", **env)
    code = (
        "from django.conf import settings as s;"
        "print(s.SECRET_KEY); print(s.DEBUG); print(s.DATABASES['default']['ENGINE']);"
        "print(s.REDIS_URL); print(s.CELERY_BROKER_URL); print(','.join(s.WEBMAIL_CREDENTIAL_KEYS))"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_defaults_generate_secrets_once_and_use_sqlite_and_embedded_redis(tmp_path):
    first = load_settings(tmp_path)
    assert first.returncode == 0, first.stderr
    secret, debug, engine, redis_url, broker, keys = first.stdout.split()
    assert debug == "False"
    assert engine == "django.db.backends.sqlite3"
    assert redis_url.startswith("unix://") and redis_url.endswith("redis.sock")
    assert broker.startswith("redis+socket://")
    var = tmp_path / "var"
    for name in ("secret_key", "credential_keys"):
        assert stat.S_IMODE((var / name).stat().st_mode) == 0o600
    second = load_settings(tmp_path)
    assert second.stdout.split()[0] == secret
    assert second.stdout.split()[5] == keys


def test_environment_overrides_defaults(tmp_path):
    result = load_settings(
        tmp_path,
        SECRET_KEY="from-env",
        DEBUG="yes",
        DATABASE_URL="postgres://u@127.0.0.1:5432/db",
        REDIS_URL="redis://127.0.0.1:6379/3",
    )
    assert result.returncode == 0, result.stderr
    secret, debug, engine, redis_url, broker, _ = result.stdout.split()
    assert (secret, debug, engine) == ("from-env", "True", "django.db.backends.postgresql")
    assert redis_url == broker == "redis://127.0.0.1:6379/3"
    assert not (tmp_path / "var" / "secret_key").exists()


@pytest.mark.parametrize(
    "env",
    [
        {"DEBUG": "maybe"},
        {"REDIS_URL": "http://127.0.0.1"},
        {"WEBMAIL_SIGNUP": "sometimes"},
        {"WEBMAIL_CONNECT_TIMEOUT": "x"},
    ],
)
def test_unparseable_values_are_configuration_errors(tmp_path, env):
    result = load_settings(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


def test_env_helpers_parse_strictly(monkeypatch):
    monkeypatch.setenv("X_BOOL", "off")
    assert project_settings.env_bool("X_BOOL", True) is False
    monkeypatch.setenv("X_INT", "-1")
    with pytest.raises(ImproperlyConfigured):
        project_settings.env_int("X_INT", 5, minimum=0)
    monkeypatch.setenv("X_LIST", " a, ,b ")
    assert project_settings.env_list("X_LIST") == ["a", "b"]


@pytest.mark.parametrize(
    "env",
    [
        {"WEBMAIL_MODE": "production"},
        {
            "WEBMAIL_MODE": "production",
            "SECRET_KEY": "k",
            "WEBMAIL_CREDENTIAL_KEYS": "x",
            "REDIS_URL": "redis://h",
        },
    ],
)
def test_production_mode_refuses_generated_keys_and_sqlite(tmp_path, env):
    result = load_settings(tmp_path, **env)
    assert result.returncode != 0 and "WEBMAIL_MODE=production" in result.stderr


def test_production_mode_turns_on_secure_cookies_and_hsts(tmp_path):
    from cryptography.fernet import Fernet

    env = {
        "WEBMAIL_MODE": "production",
        "SECRET_KEY": "k" * 50,
        "WEBMAIL_CREDENTIAL_KEYS": Fernet.generate_key().decode(),
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "DATABASE_URL": "postgres://u@127.0.0.1:5432/db",
    }
    clean = {k: v for k, v in os.environ.items() if k not in env}
    clean.update(WEBMAIL_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="webmail.settings", **env)
    code = "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)
    assert result.stdout.split() == ["True", "True"], result.stderr
