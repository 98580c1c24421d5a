"""`manage.py cluster`: the scale-out process layout on one machine, started and stopped as a whole."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90  # a loaded 2-core machine needs a while to import Django in 9 processes


def free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base > 65000:
            continue
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", base))
                b.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
        return base
    raise RuntimeError("no two consecutive free ports")


def database_url() -> str:
    db = settings.DATABASES["default"]
    user = urllib.parse.quote(db.get("USER") or "postgres")
    password = f":{urllib.parse.quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


def private_redis_url() -> str:
    """The tests' Redis on another database number, so the cluster's workers never eat other tests' tasks."""
    url = settings.REDIS_URL
    if url.startswith("unix://"):
        return url  # the session's private Redis already
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/14"))


def cluster_env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_SETTINGS_MODULE"))}
    env.update(DATABASE_URL=database_url(), REDIS_URL=redis_url, DJANGO_SETTINGS_MODULE="webmail.settings")
    env.setdefault("SECRET_KEY", settings.SECRET_KEY)
    env.setdefault("WEBMAIL_CREDENTIAL_KEYS", ",".join(settings.WEBMAIL_CREDENTIAL_KEYS))
    return env


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout}s (last error: {last!r})")


def healthz(url: str) -> dict:
    with urllib.request.urlopen(url + "healthz", timeout=5) as response:
        return json.loads(response.read())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def test_it_refuses_sqlite_with_a_clear_message(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3",
        "REDIS_URL": "redis://127.0.0.1:6379/14",
    }
    env["DJANGO_SETTINGS_MODULE"] = "webmail.settings"
    env["WEBMAIL_VAR_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "manage.py", "cluster"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "needs PostgreSQL" in done.stderr


def test_it_refuses_to_start_without_redis_url(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test", DJANGO_SETTINGS_MODULE="webmail.settings"
    )
    env["WEBMAIL_VAR_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "manage.py", "cluster"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "needs REDIS_URL" in done.stderr


@pytest.mark.timeout(240)
def test_the_cluster_serves_on_both_ports_answers_pings_and_stops_cleanly(transactional_db, tmp_path):
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("manage.py cluster needs PostgreSQL (set DATABASE_URL, as CI does)")
    from celery import Celery

    redis_url = private_redis_url()
    base = free_port_pair()
    state_file = tmp_path / "cluster.json"
    log_dir = tmp_path / "logs"
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "cluster", "--base-port", str(base), "--state", str(state_file)]
        + ["--log-dir", str(log_dir)],
        cwd=ROOT,
        env=cluster_env(redis_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pids: list[int] = []
    try:
        state = wait_for(lambda: json.loads(state_file.read_text()), 30, "no state file")
        pids = [p["pid"] for p in state["processes"]]
        kinds = sorted(p["kind"] for p in state["processes"])
        assert kinds == sorted(["web", "web", "sync", "sync", "send", "push", "watch", "watch", "beat"])
        assert state["web_urls"] == [f"http://127.0.0.1:{base}/", f"http://127.0.0.1:{base + 1}/"]
        for url in state["web_urls"]:
            assert wait_for(lambda url=url: healthz(url), START_TIMEOUT, f"{url}healthz did not answer") == {
                "status": "ok",
                "database": "ok",
                "redis": "ok",
            }
        broker = (
            "redis+socket://" + redis_url.removeprefix("unix://")
            if redis_url.startswith("unix://")
            else redis_url
        )
        pinger = Celery("ping", broker=broker)
        nodes = set(state["celery_nodes"])
        answered: set[str] = set()

        def all_pong() -> bool:
            for reply in pinger.control.ping(destination=sorted(nodes), timeout=2):
                answered.update(reply)
            return answered >= nodes

        wait_for(all_pong, START_TIMEOUT, f"not every worker answered a ping (answered: {answered})")
        assert alive(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            raise AssertionError("the cluster did not stop within 60 s")
    assert proc.returncode == 0, output
    assert "Cluster stopped." in output
    assert pids and not [pid for pid in pids if alive(pid)]
    assert not state_file.exists()
