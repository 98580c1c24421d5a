"""Django settings, parsed strictly from the environment with safe defaults for the embedded mode."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from webmail import instance

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Parse a boolean variable; anything but the usual spellings is a configuration error."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    """Parse a non-negative integer variable."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}")
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    """Parse a comma-separated list variable."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_choice(name: str, default: str, choices: set[str]) -> str:
    """Parse a variable that must be one of a few words."""
    value = os.environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {sorted(choices)}, not {value!r}")
    return value


# "production" refuses the embedded defaults: every process of a deployment must share the same
# database, Redis and keys, so they must be given, not generated.
WEBMAIL_MODE = env_choice("WEBMAIL_MODE", "embedded", {"embedded", "production"})
PRODUCTION = WEBMAIL_MODE == "production"
if PRODUCTION:
    for required in ("SECRET_KEY", "WEBMAIL_CREDENTIAL_KEYS", "REDIS_URL"):
        if not os.environ.get(required, "").strip():
            raise ImproperlyConfigured(f"{required} must be set when WEBMAIL_MODE=production")
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        raise ImproperlyConfigured("WEBMAIL_MODE=production needs DATABASE_URL pointing at PostgreSQL")

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or instance.generated_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "accounts",
    "webmail.mail",
    "webmail.compose",
    "webmail.ops",
    "webmail.dashboard",
]

MIDDLEWARE = [
    "webmail.ops.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "webmail.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.AccountSecurityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.ModelBackend",  # Django's, with a prepared query for the signed-in person
    "django.contrib.auth.backends.ModelBackend",  # only for sessions made before the line above
]

ROOT_URLCONF = "webmail.urls"
ASGI_APPLICATION = "webmail.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webmail.context_processors.product",
            ],
        },
    },
    {
        # The mail pane's fragments (templates/mail/*.jinja), rendered on nearly every request:
        # compiled to Python once (see webmail/jinja.py). Views ask for them with using="jinja2".
        "NAME": "jinja2",
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "webmail.jinja.environment"},
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{instance.var_dir() / 'webmail.sqlite3'}",
        # 0: under ASGI each request may run on another thread, and persistent connections would pile
        # up per thread until PostgreSQL refuses more; web processes use a pool instead (below).
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
# A connection pool (psycopg_pool, through Django) for processes that set DATABASE_POOL_SIZE: the
# ASGI web processes do (webmail/asgi.py), so a request borrows an open connection instead of
# paying PostgreSQL's ~5 ms connection start-up. Celery workers fork, and a pool must not cross a
# fork, so they keep plain connections.
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_POOL_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_SIZE,
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 20, minimum=1),
        "max_idle": 300,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a Celery worker writes.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        # A 64 MB page cache and checkpoints every ~80 MB of WAL: a sync writes bodies in bulk (and
        # moves its checkpoints to a thread, webmail/mail/walcheckpoint.py), the indexing task the
        # full-text index; the default 2 MB cache and 4 MB checkpoints cost 10-15 %.
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; "
            "PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=20000;"
        ),
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: the Celery broker and the Channels layer. Without REDIS_URL the app uses a Redis it starts
# for itself on a unix socket under var/ (see `manage.py serve`).
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
EMBEDDED_REDIS = not REDIS_URL
if EMBEDDED_REDIS:
    REDIS_URL = f"unix://{instance.embedded_redis_socket()}"
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix://, not {REDIS_URL!r}")

CELERY_BROKER_URL = (
    "redis+socket://" + REDIS_URL.removeprefix("unix://") if REDIS_URL.startswith("unix://") else REDIS_URL
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# The cache (sessions read from Redis before PostgreSQL; see accounts/session_store.py).
CACHES = {
    "default": {
        "BACKEND": "webmail.ops.cache.SharedPoolRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "webmail",
        "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
    }
}
SESSION_ENGINE = "accounts.session_store"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 gives every connection a 5 s read timeout by default, the same 5 s that
            # channels_redis blocks for in BZPOPMIN while a process's sockets are quiet: the read then
            # timed out now and again and took WebSockets down with it (channels_redis issue #422;
            # seen here: 7 of 250 quiet sockets in 35 s). Reads wait as they did before redis-py 8 (a
            # finite timeout above BZPOPMIN's also made a cancelled read hang while its loop closed);
            # a Redis that restarts closes the connection, which channels_redis reconnects.
            "hosts": [{"address": REDIS_URL, "socket_timeout": None, "socket_connect_timeout": 5}],
            "prefix": "webmail:channels",
        },
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or instance.var_dir() / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_HTTPS_PROXY", PRODUCTION) else None
)

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "webmail@localhost")

LOG_FORMAT = env_choice("LOG_FORMAT", "text", {"text", "json"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "webmail.ops.logs.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- the product's own settings -------------------------------------------------------------------
# Fernet keys for mail passwords at rest, newest first (comma-separated); older keys still decrypt.
WEBMAIL_CREDENTIAL_KEYS = env_list("WEBMAIL_CREDENTIAL_KEYS") or [instance.generated_credential_keys()]
# Hosts and networks a person's account may point at although they are internal (the operator's own
# mail server, the test stack). Everything else that resolves to loopback/private/link-local is refused.
WEBMAIL_ALLOWED_MAIL_HOSTS = env_list("WEBMAIL_ALLOWED_MAIL_HOSTS")
WEBMAIL_ALLOWED_MAIL_NETWORKS = env_list("WEBMAIL_ALLOWED_MAIL_NETWORKS")
# Extra CA bundle to trust for mail servers (besides the system store), e.g. a self-signed test stack.
WEBMAIL_EXTRA_CA_FILE = os.environ.get("WEBMAIL_EXTRA_CA_FILE") or None
WEBMAIL_CONNECT_TIMEOUT = env_int("WEBMAIL_CONNECT_TIMEOUT", 20, minimum=1)
# Hosts the remote-image proxy may fetch from although they are internal (tests use a canary on
# 127.0.0.1); everything resolving to loopback/private/link-local is refused otherwise.
WEBMAIL_IMAGE_PROXY_ALLOWED_HOSTS = env_list("WEBMAIL_IMAGE_PROXY_ALLOWED_HOSTS")
# HTTP requests one web (ASGI) process runs at once; more wait. Each holds a database connection.
WEBMAIL_WEB_CONCURRENCY = env_int("WEBMAIL_WEB_CONCURRENCY", 16)
# Networks that may read /metrics without signing in (staff always may).
WEBMAIL_METRICS_ALLOWED_NETWORKS = env_list("WEBMAIL_METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
WEBMAIL_MAX_ACCOUNTS_PER_PERSON = env_int("WEBMAIL_MAX_ACCOUNTS_PER_PERSON", 10, minimum=1)
# Seconds an account's sync lock lives without being extended (a killed worker frees it after this).
WEBMAIL_SYNC_LOCK_TTL = env_int("WEBMAIL_SYNC_LOCK_TTL", 120, minimum=10)
# Accounts one `manage.py watch` process holds IDLE connections for (run more processes for more).
WEBMAIL_WATCHER_CAPACITY = env_int("WEBMAIL_WATCHER_CAPACITY", 500, minimum=1)
# Capabilities to pretend an IMAP server lacks (e.g. QRESYNC,CONDSTORE): for tests and for servers
# whose implementation of an extension is broken.
WEBMAIL_IMAP_DISABLED_CAPS = [c.upper() for c in env_list("WEBMAIL_IMAP_DISABLED_CAPS")]
# Processes (per sync worker) that parse fetched mail, so parsing does not hold the worker's GIL
# while it fetches and stores; unset: 1 on a machine with two cores or more, else 0 (a thread).
_parse_processes = os.environ.get("WEBMAIL_SYNC_PARSE_PROCESSES", "").strip()
WEBMAIL_SYNC_PARSE_PROCESSES = int(_parse_processes) if _parse_processes.isdigit() else None
# Minutes between periodic syncs of each account (IDLE watchers make most syncs immediate).
WEBMAIL_SYNC_INTERVAL = env_int("WEBMAIL_SYNC_INTERVAL", 2, minimum=1)

# Compose and send.
WEBMAIL_MAX_ATTACHMENT_BYTES = env_int("WEBMAIL_MAX_ATTACHMENT_BYTES", 25 * 1024 * 1024, minimum=1024)
WEBMAIL_MAX_MESSAGE_BYTES = env_int("WEBMAIL_MAX_MESSAGE_BYTES", 25 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
WEBMAIL_UNDO_SEND_SECONDS = env_int("WEBMAIL_UNDO_SEND_SECONDS", 10)
# How long temporary SMTP failures are retried before the message is marked failed.
WEBMAIL_SEND_RETRY_HOURS = env_int("WEBMAIL_SEND_RETRY_HOURS", 48, minimum=1)
WEBMAIL_SEND_RATE_MESSAGES_PER_HOUR = env_int("WEBMAIL_SEND_RATE_MESSAGES_PER_HOUR", 200, minimum=1)
WEBMAIL_SEND_RATE_RECIPIENTS_PER_HOUR = env_int("WEBMAIL_SEND_RATE_RECIPIENTS_PER_HOUR", 1000, minimum=1)

# --- People and operators (accounts/, webmail/dashboard/) ------------------------------------------
# Sign-up policy: "open", "invite" (staff make expiring invite links on the dashboard) or "closed".
WEBMAIL_SIGNUP = env_choice("WEBMAIL_SIGNUP", "open", {"open", "invite", "closed"})
# Open sign-up: require a verified email address before the new person can sign in.
WEBMAIL_SIGNUP_VERIFY_EMAIL = env_bool("WEBMAIL_SIGNUP_VERIFY_EMAIL", False)
WEBMAIL_INVITE_DAYS = env_int("WEBMAIL_INVITE_DAYS", 7, minimum=1)
# Everyone must set up two-factor authentication (TOTP) before using the app.
WEBMAIL_REQUIRE_2FA = env_bool("WEBMAIL_REQUIRE_2FA", False)
# Cache storage per person in MB before syncing stops (0 = unlimited); overridable on the dashboard.
WEBMAIL_MAX_CACHE_MB = env_int("WEBMAIL_MAX_CACHE_MB", 0)
OTP_TOTP_ISSUER = os.environ.get("WEBMAIL_OTP_ISSUER", "Webmail")
# Sign-in lockout (django-axes): after this many failures for one user name from one address, that
# pair waits WEBMAIL_LOCKOUT_MINUTES; other addresses (the person themself) are not locked out.
AXES_FAILURE_LIMIT = env_int("WEBMAIL_LOCKOUT_FAILURES", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("WEBMAIL_LOCKOUT_MINUTES", 15, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.login.lockout_response"
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
