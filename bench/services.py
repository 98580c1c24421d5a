"""Services a benchmark starts for itself: a private PostgreSQL and Redis, the database of a run, and
`manage.py cluster` (used by bench/faults.py and bench/load.py)."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Return the first truthy result of CHECK, or None after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception:  # the thing is still down
            result = None
        if result:
            return result
        time.sleep(interval)
    return None


# -- private servers ----------------------------------------------------------------------------


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb in a temp dir), so that restarting it disturbs nobody."""

    def __init__(self, work: Path) -> None:
        self.dir = work / "pg"
        self.port = free_port()
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        self.bin = Path(bins[-1]).parent if bins else None

    def _run(self, *argv: str) -> None:
        assert self.bin is not None
        cmd = " ".join([str(self.bin / argv[0]), *argv[1:]])
        subprocess.run(
            ["su", "postgres", "-s", "/bin/sh", "-c", cmd], check=True, capture_output=True, timeout=60
        )

    def start(self) -> str:
        if self.bin is None:
            raise RuntimeError("no /usr/lib/postgresql/*/bin/pg_ctl")
        pg = pwd.getpwnam("postgres")
        self.dir.mkdir()
        os.chown(self.dir, pg.pw_uid, pg.pw_gid)
        self._run("initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres", "--no-sync")
        self._pg_ctl("start")
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *action: str) -> None:
        # -l: without a log file the server inherits (and holds open) this process's pipes.
        self._run(
            "pg_ctl",
            "-D",
            f"{self.dir}/data",
            "-l",
            f"{self.dir}/log",
            "-w",
            *action,
            "-o",
            f"'{self._opts()}'",
        )

    def _opts(self) -> str:
        return (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )

    def restart(self) -> None:
        self._pg_ctl("-m", "fast", "restart")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", f"{self.dir}/data", "-m", "immediate", "-w", "stop")


class BenchDatabase:
    """The database of a bench run: on a private PostgreSQL (restartable) when this process may start
    one, else a fresh database on DATABASE_URL's server. stop() removes it either way."""

    def __init__(self, work: Path, name: str) -> None:
        self.work, self.name = work, name
        self.pg: PrivatePostgres | None = None
        self.shared: str | None = None
        self.url = ""
        self.note = ""

    def start(self) -> str:
        pg = PrivatePostgres(self.work)
        try:
            url = pg.start()
            subprocess.run(["psql", url, "-qc", "CREATE DATABASE webmail"], check=True, capture_output=True)
            self.pg, self.url = pg, url.rsplit("/", 1)[0] + "/webmail"
            self.note = "private PostgreSQL (initdb in a temporary directory)"
        except Exception as exc:
            log(f"no private PostgreSQL ({exc}); using a fresh database on DATABASE_URL's server")
            self.shared = f"bench_{self.name}_{os.getpid()}"
            subprocess.run(
                ["psql", self._server(), "-qc", f"CREATE DATABASE {self.shared}"],
                check=True,
                capture_output=True,
            )
            self.url = self._server().rsplit("/", 1)[0] + "/" + self.shared
            self.note = "fresh database on the shared PostgreSQL"
        return self.url

    def stop(self) -> None:
        if self.pg:
            self.pg.stop()
        if self.shared:
            drop = f"DROP DATABASE IF EXISTS {self.shared}"
            subprocess.run(["psql", self._server(), "-qc", drop], capture_output=True)

    @staticmethod
    def _server() -> str:
        base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        return base.rsplit("/", 1)[0] + "/postgres"


def cluster_env(work: Path, db_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a bench's cluster and of the bench process itself (fresh keys)."""
    from cryptography.fernet import Fernet

    return {
        **{k: v for k, v in os.environ.items() if k != "WEBMAIL_MODE"},
        "DJANGO_SETTINGS_MODULE": "webmail.settings",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "WEBMAIL_VAR_DIR": str(work / "var"),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "WEBMAIL_CREDENTIAL_KEYS": Fernet.generate_key().decode(),
        **extra,
    }


class PrivateRedis:
    """redis-server on a loopback TCP port with an append-only file, restartable in place."""

    def __init__(self, work: Path) -> None:
        self.dir = work / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        from webmail.ops.embedded_redis import redis_server_binary

        out = open(self.dir / "redis.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
            + ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def pong() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")

        if not wait_until(pong, 10, 0.02):
            raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Cluster:
    def __init__(self, work: Path, env: dict[str, str], extra_args: list[str] | None = None) -> None:
        self.extra_args = extra_args or []
        self.state_file = work / "cluster.json"
        self.log_dir = work / "cluster-logs"
        self.env = env
        self.base = free_port()
        while not _port_pair_free(self.base):
            self.base = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = open(self.log_dir.with_suffix(".out"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "cluster",
                "--base-port",
                str(self.base),
                "--state",
                str(self.state_file),
            ]
            + ["--log-dir", str(self.log_dir), *self.extra_args],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        if not wait_until(self.state_file.exists, 30):
            raise RuntimeError("the cluster wrote no state file")
        if not wait_until(lambda: all(healthy(u) for u in self.state()["web_urls"]), 120, 0.5):
            raise RuntimeError(f"the cluster's web processes did not become healthy; see {self.log_dir}")
        from webmail.celery import app

        nodes = set(self.state()["celery_nodes"])
        answered: set[str] = set()

        def pongs() -> bool:
            for reply in app.control.ping(destination=sorted(nodes), timeout=2):
                answered.update(reply)
            return answered >= nodes

        if not wait_until(pongs, 120, 0.5):
            raise RuntimeError(f"workers did not answer pings: {nodes - answered}")

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())

    def process(self, name: str) -> dict[str, Any]:
        return next(p for p in self.state()["processes"] if p["name"] == name)

    def kill(self, name: str) -> int:
        pid = self.process(name)["pid"]
        os.killpg(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, name: str, old_pid: int, timeout: float = 30) -> bool:
        return bool(wait_until(lambda: self.process(name)["pid"] != old_pid, timeout))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _port_pair_free(base: int) -> bool:
    with socket.socket() as a, socket.socket() as b:
        try:
            a.bind(("127.0.0.1", base))
            b.bind(("127.0.0.1", base + 1))
        except OSError:
            return False
    return True


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "healthz", timeout=3) as response:
            return response.status == 200
    except Exception:
        return False


# -- people, mail and checks --------------------------------------------------------------------
