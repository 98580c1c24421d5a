"""Run the whole service in the foreground: web (uvicorn), a Celery worker and Celery beat.

Without REDIS_URL a private Redis is started too. Ctrl-C (or SIGTERM) stops everything.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from webmail import instance
from webmail.ops import embedded_redis


class Command(BaseCommand):
    help = "Run web server, Celery worker, Celery beat and an IDLE watcher together (Ctrl-C stops all)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
        parser.add_argument("--no-worker", action="store_true", help="web server only")

    def handle(self, *args: Any, **opts: Any) -> None:
        redis_proc = None
        if settings.EMBEDDED_REDIS:
            started = time.monotonic()
            redis_proc = embedded_redis.start(instance.embedded_redis_socket())
            self.stdout.write(
                f"Embedded Redis ({embedded_redis.redis_server_binary()}) on {instance.embedded_redis_socket()}"
                f" ready in {time.monotonic() - started:.2f}s"
            )
        py = sys.executable
        commands = {
            "web": [
                py,
                "-m",
                "uvicorn",
                "webmail.asgi:application",
                "--host",
                opts["host"],
                "--port",
                str(opts["port"]),
                "--no-access-log",
                "--ws",
                "websockets-sansio",
                "--lifespan",
                "off",
            ],
        }
        if not opts["no_worker"]:
            commands["worker"] = [
                py,
                "-m",
                "celery",
                "-A",
                "webmail",
                "worker",
                "-Q",
                "sync,send,push",
                "--concurrency",
                str(opts["concurrency"]),
                "--loglevel",
                "INFO",
                "-n",
                "worker@%h",
            ]
            commands["watcher"] = [py, str(settings.BASE_DIR / "manage.py"), "watch"]
            commands["beat"] = [
                py,
                "-m",
                "celery",
                "-A",
                "webmail",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(instance.var_dir() / "celerybeat-schedule"),
            ]
        procs = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}
        url = f"http://{opts['host']}:{opts['port']}/"
        self.stdout.write(self.style.SUCCESS(f"\nWebmail is running on {url}"))
        self.stdout.write(
            "Create the first person with:  .venv/bin/python manage.py createsuperuser"
            + ("  (or sign up on the login page)" if settings.WEBMAIL_SIGNUP == "open" else "")
        )
        self.stdout.write("Press Ctrl-C to stop.\n")
        stopping = False

        def on_signal(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with status {proc.returncode}; stopping the others")
                        stopping = True
                time.sleep(0.3)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            embedded_redis.stop(redis_proc)
            self.stdout.write("Stopped.")
