"""Command line for the test mail stack: python -m tests.mailstack start|stop|status DIR [--seed]."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tests.mailstack.stack import MailStack, MailStackError


def _describe(stack: MailStack, **extra: object) -> str:
    info = {"dir": str(stack.dir), "host": stack.host, "ports": stack.ports, "ca_file": stack.ca_file}
    info.update(extra)
    return json.dumps(info, indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mailstack", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "adduser"])
    parser.add_argument("dir", type=Path, help="state directory (created; must be traversable by all users)")
    parser.add_argument(
        "--seed", action="store_true", help="start: create alice@ and bob@example.test with mail"
    )
    parser.add_argument("--user", help="adduser: the address")
    parser.add_argument("--password", help="adduser: the password")
    args = parser.parse_args(argv)
    stack = MailStack(args.dir)
    try:
        if args.command == "start":
            args.dir.mkdir(parents=True, exist_ok=True)
            os.chmod(args.dir, 0o755)
            stack.start()
            users = {}
            if args.seed:
                from tests.mailstack.seed import seed

                users = {u.address: u.password for u in seed(stack)}
            print(_describe(stack, running=True, users=users))
        elif args.command == "stop":
            stack.stop()
            print(_describe(stack, running=False))
        elif args.command == "status":
            running = stack.running()
            print(_describe(stack, running=running, pids=stack.status()))
            return 0 if running else 1
        elif args.command == "adduser":
            if not args.user or not args.password:
                parser.error("adduser needs --user and --password")
            stack.add_user(args.user, args.password)
    except MailStackError as e:
        print(f"mailstack: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
