"""Run a local scale-out cluster in the foreground: web processes, workers per queue, watchers, beat.

It is the production process layout on one machine (PostgreSQL and a shared Redis, every process
separate), for tests, benchmarks and fault drills. Like systemd's Restart=always, a process that dies
is started again after a second; Ctrl-C or SIGTERM stops everything. With --state FILE a JSON file
describes every process (pid, port, Celery node name), rewritten after each restart, for scripts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

RESTART_DELAY = 1.0  # seconds before a dead process is started again (systemd's RestartSec)
STOP_TIMEOUT = 20.0  # seconds to wait for SIGTERM before SIGKILL


@dataclass
class Proc:
    """One supervised process of the cluster."""

    name: str
    kind: str  # web, sync, send, push, watch, beat
    argv: list[str]
    port: int | None = None
    node: str | None = None  # Celery node name (answers ping)
    pid: int | None = None
    restarts: int = 0
    started_at: float = 0.0
    died_at: float | None = None
    popen: subprocess.Popen | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k not in ("popen", "argv")}
        if self.port:
            data["url"] = f"http://{self.argv[self.argv.index('--host') + 1]}:{self.port}/"
        return data


def redacted(url: str) -> str:
    """URL without its password, for printing."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urllib.parse.urlunsplit(parts)


def check_backends() -> None:
    """Refuse SQLite and the embedded Redis: cluster processes must share real servers."""
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        raise CommandError(
            "manage.py cluster needs PostgreSQL: several processes cannot share a SQLite file safely. "
            "Set DATABASE_URL=postgres://user@host:5432/db."
        )
    if settings.EMBEDDED_REDIS or not os.environ.get("REDIS_URL"):
        raise CommandError(
            "manage.py cluster needs REDIS_URL (redis://host:6379/0 or unix:///path): every process must "
            "share one broker and channel layer, not start a private Redis."
        )


def port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class Command(BaseCommand):
    help = (
        "Run web processes, sync/send/push workers, IDLE watchers and beat against DATABASE_URL "
        "(PostgreSQL) and REDIS_URL, restarting any that dies; Ctrl-C or SIGTERM stops all."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address the web processes listen on")
        parser.add_argument(
            "--base-port", type=int, default=8100, help="first web port; the next ones follow"
        )
        parser.add_argument("--web", type=int, default=2, help="uvicorn web processes")
        parser.add_argument("--sync", type=int, default=2, help="Celery workers on the sync queue")
        parser.add_argument("--send", type=int, default=1, help="Celery workers on the send queue")
        parser.add_argument("--push", type=int, default=1, help="Celery workers on the push queue")
        parser.add_argument("--watchers", type=int, default=2, help="IDLE watcher processes")
        parser.add_argument("--no-beat", action="store_true", help="do not run Celery beat")
        parser.add_argument("--concurrency", type=int, default=1, help="pool processes per worker")
        parser.add_argument("--state", default=None, help="write a JSON description of the processes here")
        parser.add_argument("--log-dir", default=None, help="one log file per process here (default: stdout)")
        parser.add_argument("--no-restart", action="store_true", help="stop everything when one process dies")
        parser.add_argument("--migrate", action="store_true", help="apply migrations before starting")

    def handle(self, *args: Any, **opts: Any) -> None:
        check_backends()
        if opts["migrate"]:
            from django.core.management import call_command

            call_command("migrate", interactive=False, verbosity=0)
        host, base = opts["host"], opts["base_port"]
        busy = [p for p in range(base, base + opts["web"]) if not port_free(host, p)]
        if busy:
            raise CommandError(f"ports already in use on {host}: {busy}; pick another --base-port")
        self.run_dir = Path(tempfile.mkdtemp(prefix="webmail-cluster-"))
        self.log_dir = Path(opts["log_dir"]).absolute() if opts["log_dir"] else None
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = Path(opts["state"]).absolute() if opts["state"] else None
        self.restart = not opts["no_restart"]
        self.procs = self.plan(opts)
        self.stopping = False
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        try:
            for proc in self.procs:
                self.spawn(proc)
            self.write_state()
            self.announce()
            self.supervise()
        finally:
            self.stop_all()
            if self.state_path:
                self.state_path.unlink(missing_ok=True)
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.stdout.write("Cluster stopped.")

    # -- the plan ---------------------------------------------------------------------------------

    def plan(self, opts: dict[str, Any]) -> list[Proc]:
        py, manage = sys.executable, str(settings.BASE_DIR / "manage.py")
        host, hostname = opts["host"], socket.gethostname()
        procs: list[Proc] = []
        for i in range(opts["web"]):
            port = opts["base_port"] + i
            argv = [py, "-m", "uvicorn", "webmail.asgi:application", "--host", host, "--port", str(port)]
            argv += ["--no-access-log", "--ws", "websockets-sansio", "--lifespan", "off"]
            procs.append(Proc(f"web-{i + 1}", "web", argv, port=port))
        for queue in ("sync", "send", "push"):
            for i in range(opts[queue]):
                node = f"{queue}-{i + 1}@{hostname}"
                argv = [py, "-m", "celery", "-A", "webmail", "worker", "-Q", queue, "-n", node]
                argv += ["--concurrency", str(opts["concurrency"]), "--prefetch-multiplier", "1"]
                argv += ["--loglevel", "INFO", "--without-gossip", "--without-mingle"]
                procs.append(Proc(f"{queue}-{i + 1}", queue, argv, node=node))
        for i in range(opts["watchers"]):
            name = f"{hostname}-watch-{i + 1}"
            procs.append(Proc(f"watch-{i + 1}", "watch", [py, manage, "watch", "--name", name]))
        if not opts["no_beat"]:
            schedule = str(self.run_dir / "celerybeat-schedule")
            argv = [py, "-m", "celery", "-A", "webmail", "beat", "--loglevel", "INFO", "--schedule", schedule]
            procs.append(Proc("beat", "beat", argv))
        return procs

    # -- processes --------------------------------------------------------------------------------

    def output_for(self, proc: Proc) -> TextIO | None:
        if self.log_dir is None:
            return None
        return open(self.log_dir / f"{proc.name}.log", "a")  # noqa: SIM115  (owned by the child)

    def spawn(self, proc: Proc) -> None:
        out = self.output_for(proc)
        # Each process leads its own group, so a fault drill can kill a worker with its pool
        # children (os.killpg), as the kernel's OOM killer or a crashed machine would.
        proc.popen = subprocess.Popen(
            proc.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
            cwd=str(settings.BASE_DIR),
        )
        if out:
            out.close()
        proc.pid = proc.popen.pid
        proc.started_at = time.time()
        proc.died_at = None

    def supervise(self) -> None:
        while not self.stopping:
            changed = False
            for proc in self.procs:
                assert proc.popen is not None
                code = proc.popen.poll()
                if code is None:
                    continue
                if proc.died_at is None:
                    proc.died_at = time.monotonic()
                    self.stderr.write(f"{proc.name} (pid {proc.pid}) exited with status {code}")
                    self.reap_group(proc)
                    if not self.restart:
                        self.stopping = True
                        break
                elif time.monotonic() - proc.died_at >= RESTART_DELAY:
                    proc.restarts += 1
                    self.spawn(proc)
                    self.stdout.write(f"{proc.name} restarted (pid {proc.pid})")
                    changed = True
            if changed:
                self.write_state()
            time.sleep(0.2)

    def reap_group(self, proc: Proc) -> None:
        """Kill what is left of a dead process's group (pool children of a killed worker)."""
        try:
            os.killpg(proc.pid or 0, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def stop_all(self) -> None:
        alive = [p for p in self.procs if p.popen is not None and p.popen.poll() is None]
        for proc in alive:
            try:
                os.killpg(proc.pid or 0, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in alive:
            assert proc.popen is not None
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{proc.name} did not stop within {STOP_TIMEOUT:.0f}s: killing it")
        for proc in self.procs:
            self.reap_group(proc)
            if proc.popen is not None:
                proc.popen.wait()

    # -- reporting --------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        db = settings.DATABASES["default"]
        return {
            "pid": os.getpid(),
            "database": f"postgresql://{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db['NAME']}",
            "redis": redacted(settings.REDIS_URL),
            "web_urls": [
                f"http://{p.argv[p.argv.index('--host') + 1]}:{p.port}/" for p in self.procs if p.port
            ],
            "celery_nodes": [p.node for p in self.procs if p.node],
            "processes": [p.describe() for p in self.procs],
            "logs": str(self.log_dir) if self.log_dir else None,
        }

    def write_state(self) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps(self.state(), indent=2) + "\n")
        os.replace(tmp, self.state_path)

    def announce(self) -> None:
        state = self.state()
        self.stdout.write(self.style.SUCCESS(f"Webmail cluster (supervisor pid {state['pid']})"))
        self.stdout.write(f"  database  {state['database']}")
        self.stdout.write(f"  redis     {state['redis']}")
        for proc in self.procs:
            where = f"http://{proc.argv[proc.argv.index('--host') + 1]}:{proc.port}/" if proc.port else ""
            where = where or (f"celery node {proc.node}" if proc.node else "")
            self.stdout.write(f"  {proc.name:<8}  pid {proc.pid:<7}  {where}")
        if self.log_dir:
            self.stdout.write(f"  logs      {self.log_dir}/<name>.log")
        if self.state_path:
            self.stdout.write(f"  state     {self.state_path}")
        self.stdout.write("Dead processes are restarted after 1 s. Press Ctrl-C to stop all.\n")
