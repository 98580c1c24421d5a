"""A real Dovecot + Postfix mail stack on loopback, run from one state directory."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from imapclient import IMAPClient

HERE = Path(__file__).resolve().parent

PORT_NAMES = ("imap", "imaps", "pop3", "pop3s", "lmtp", "submission", "smtps", "mx")
DEFAULT_DOMAIN = "example.test"
HOSTNAME = "mail.example.test"
# Unix socket paths are limited to 108 bytes; Dovecot's deepest one is about 40 below DIR.
MAX_DIR_LEN = 60


class MailStackError(RuntimeError):
    """The test mail stack could not be set up, started or used."""


@dataclass(frozen=True)
class MailUser:
    """A mailbox on the stack."""

    address: str
    password: str = field(repr=False)


def _port_env(name: str) -> int | None:
    """Read MAILSTACK_<NAME>_PORT (or the reference script's <NAME>_PORT) from the environment."""
    for key in (f"MAILSTACK_{name.upper()}_PORT", f"{name.upper()}_PORT"):
        value = os.environ.get(key)
        if value:
            try:
                return int(value)
            except ValueError:
                raise MailStackError(f"{key}={value!r} is not a port number") from None
    return None


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ask the kernel for distinct free loopback ports (held open together so none repeats)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _pid_alive(pidfile: Path, exe_hint: str) -> int | None:
    """Return the pid in pidfile if that process is alive and looks like exe_hint."""
    try:
        pid = int(re.sub(r"\D", "", pidfile.read_text().split("\n", 1)[0]) or "0")
    except OSError:
        return None
    if pid <= 0:
        return None
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    return pid if exe_hint in exe or exe_hint in cmdline else None


def _write_if_changed(path: Path, text: str) -> None:
    """Write text atomically, leaving an unchanged file alone and back-dating a new one.

    Postfix re-reads config and map files modified in the last 2 s ("hot") and waits for them
    to cool down, which delays its start and every smtpd banner.
    """
    data = text.encode()
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    old = time.time() - 5
    os.utime(tmp, (old, old))
    os.replace(tmp, path)


def _crlf(raw: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", raw)


class MailStack:
    """Dovecot (IMAP, POP3, LMTP) and Postfix (submission, SMTPS, MX) for one state directory.

    Everything lives under state_dir: config, certificate, sockets, logs, queue and mail.
    Ports come from `ports`, then MAILSTACK_<NAME>_PORT variables, then the ports a previous
    start in the same directory used (if still free), then free ports chosen by the kernel.
    """

    host = "127.0.0.1"
    hostname = HOSTNAME

    def __init__(
        self,
        state_dir: Path | str,
        ports: Mapping[str, int] | None = None,
        *,
        domains: tuple[str, ...] = (DEFAULT_DOMAIN,),
        smtp_backend: str | None = None,
    ) -> None:
        self.dir = Path(state_dir).absolute()
        self.domains = tuple(d.lower() for d in domains)
        self.smtp_backend = smtp_backend or os.environ.get("MAILSTACK_SMTP", "postfix")
        if self.smtp_backend not in ("postfix", "aiosmtpd"):
            raise MailStackError("MAILSTACK_SMTP must be postfix or aiosmtpd")
        self._requested = dict(ports or {})
        unknown = set(self._requested) - set(PORT_NAMES)
        if unknown:
            raise MailStackError(f"unknown port names {sorted(unknown)}; known: {PORT_NAMES}")
        self.ports: dict[str, int] = {}
        saved = self._load_state()
        if saved:
            self.ports = saved["ports"]

    # -- paths and state

    @property
    def ca_file(self) -> str:
        """The self-signed certificate: trust it as the CA to verify the stack's TLS."""
        return str(self.dir / "ssl" / "cert.pem")

    @property
    def users_file(self) -> Path:
        return self.dir / "users"

    @property
    def passwd_dir(self) -> Path:
        return self.dir / "passwd.d"

    @property
    def log_dir(self) -> Path:
        return self.dir / "log"

    @property
    def maildir_root(self) -> Path:
        return self.dir / "mail"

    def __getattr__(self, name: str) -> int:
        # stack.imap_port, stack.submission_port, ...
        if name.endswith("_port") and name[:-5] in PORT_NAMES:
            try:
                return self.__dict__["ports"][name[:-5]]
            except KeyError:
                raise AttributeError(f"{name}: the stack has no ports yet (call start())") from None
        raise AttributeError(name)

    def _state_file(self) -> Path:
        return self.dir / "stack.json"

    def _load_state(self) -> dict | None:
        try:
            return json.loads(self._state_file().read_text())
        except (OSError, ValueError):
            return None

    def _save_state(self) -> None:
        state = {"ports": self.ports, "host": self.host, "ca_file": self.ca_file, "smtp": self.smtp_backend}
        _write_if_changed(self._state_file(), json.dumps(state, indent=2) + "\n")

    def _pidfiles(self) -> list[tuple[str, Path, str]]:
        return [
            ("postfix", self.dir / "postfix-spool" / "pid" / "master.pid", "postfix"),
            ("aiosmtpd", self.dir / "run" / "submission.pid", "submission_server.py"),
            ("dovecot", self.dir / "run" / "dovecot" / "master.pid", "dovecot"),
        ]

    def status(self) -> dict[str, int | None]:
        """Map each daemon to its pid, or None when it is not running."""
        return {name: _pid_alive(pf, hint) for name, pf, hint in self._pidfiles()}

    def running(self) -> bool:
        st = self.status()
        return bool(st["dovecot"]) and bool(st[self.smtp_backend])

    # -- lifecycle

    def start(self) -> MailStack:
        """Write the config if needed and start the daemons; return self once every port answers."""
        if os.geteuid() != 0:
            raise MailStackError(
                "the test mail stack must run as root: Dovecot and Postfix switch to their own "
                "users (dovenull, dovecot, mail, postfix) and refuse to run otherwise"
            )
        for tool in ("dovecot", "postfix", "openssl"):
            if not _which(tool):
                raise MailStackError(
                    f"{tool} is not installed: apt-get install dovecot-imapd dovecot-pop3d "
                    "dovecot-lmtpd postfix openssl"
                )
        if len(str(self.dir)) > MAX_DIR_LEN:
            raise MailStackError(f"state dir {self.dir} is too long for unix sockets (max {MAX_DIR_LEN})")
        if self.running():
            return self
        self.stop()  # half-started leftovers
        for attempt in range(3):
            self._choose_ports(fresh=attempt > 0)
            self._init_dir()
            try:
                self._start_dovecot()
                self._start_smtp()
            except _PortClash:
                self.stop()
                continue
            self._save_state()
            return self
        raise MailStackError(f"no free ports after 3 attempts; see {self.log_dir}")

    def stop(self) -> None:
        """TERM the daemons this directory started (found by pid file) and wait for them to exit."""
        pids = []
        for _name, pf, hint in self._pidfiles():
            pid = _pid_alive(pf, hint)
            if pid:
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
        deadline = time.monotonic() + 15
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if Path(f"/proc/{p}").exists() and not _is_zombie(p)]
            time.sleep(0.05)
        for p in pids:
            os.kill(p, signal.SIGKILL)
        spool_pid = self.dir / "postfix-spool" / "pid"
        if spool_pid.is_dir():
            # Like 'postfix quick-stop': the next start skips its 2.5 s permission scan.
            (self.dir / "postfix-spool" / "quick-start").touch()
        for _name, pf, _hint in self._pidfiles():
            pf.unlink(missing_ok=True)

    def __enter__(self) -> MailStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _choose_ports(self, fresh: bool) -> None:
        saved = {} if fresh else dict(self.ports)
        chosen: dict[str, int] = {}
        for name in PORT_NAMES:
            port = self._requested.get(name) or _port_env(name)
            if port is None and saved.get(name) and _port_free(saved[name]):
                port = saved[name]
            if port is not None:
                if not _port_free(port):
                    raise MailStackError(f"127.0.0.1:{port} ({name}) is already in use by another process")
                chosen[name] = port
        missing = [n for n in PORT_NAMES if n not in chosen]
        free = [p for p in _free_ports(len(missing) + len(chosen)) if p not in chosen.values()]
        chosen.update(zip(missing, free, strict=False))
        self.ports = {n: chosen[n] for n in PORT_NAMES}

    def _init_dir(self) -> None:
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        # Every daemon drops privileges and must traverse each path component.
        for p in [d, *d.parents]:
            if p.stat().st_mode & 0o005 != 0o005:
                raise MailStackError(f"{p} must be world-traversable (chmod o+rx) for the mail daemons")
        os.chmod(d, 0o755)
        for sub in ("run", "log", "ssl", "state/dovecot", "postfix", "postfix-spool", "postfix-data"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(d / "run", 0o755)
        os.chmod(d / "log", 0o755)
        os.chmod(d / "postfix-spool", 0o755)
        _chown(d / "postfix-data", "postfix", "postfix")
        mail_uid, mail_gid = _ids("mail")
        (d / "mail").mkdir(exist_ok=True)
        os.chown(d / "mail", mail_uid, mail_gid)
        os.chmod(d / "mail", 0o750)
        self.passwd_dir.mkdir(exist_ok=True)
        os.chmod(self.passwd_dir, 0o750)
        _chown(self.passwd_dir, "root", "dovecot")
        if not self.users_file.exists():
            self.users_file.touch()
        os.chmod(self.users_file, 0o640)
        _chown(self.users_file, "root", "dovecot")
        if not (d / "ssl" / "cert.pem").exists():
            self._make_cert()
        _write_if_changed(d / "dovecot.conf", self._dovecot_conf(mail_uid, mail_gid))
        _write_if_changed(d / "postfix" / "main.cf", self._postfix_main())
        _write_if_changed(d / "postfix" / "master.cf", self._postfix_master())
        domain_re = "|".join(re.escape(x) for x in self.domains)
        # Any address at a stack domain is a mailbox for Postfix, so add_user needs no reload;
        # Dovecot's LMTP still refuses unknown users (RFC 2033 4.2 per-recipient reply).
        _write_if_changed(d / "postfix" / "vmailbox", f"/^[^@]+@({domain_re})$/ OK\n")

    def _make_cert(self) -> None:
        ssl_dir = self.dir / "ssl"
        san = f"subjectAltName=DNS:localhost,DNS:{HOSTNAME},IP:127.0.0.1,IP:::1"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650"]
            + ["-subj", "/CN=localhost", "-addext", san]
            + ["-keyout", str(ssl_dir / "key.pem"), "-out", str(ssl_dir / "cert.pem")],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        os.chmod(ssl_dir / "key.pem", 0o600)
        os.chmod(ssl_dir / "cert.pem", 0o644)

    def _start_dovecot(self) -> None:
        # Stale sockets of a previous run: a leftover anvil-auth-penalty socket makes every
        # auth process wait 5 s on ECONNREFUSED.
        _rmtree(self.dir / "run" / "dovecot")
        log = self.log_dir / "dovecot-start.log"
        with open(log, "ab") as out:
            # Daemons inherit stdout/stderr: never let them hold a caller's pipe open.
            rc = subprocess.call(
                ["dovecot", "-c", str(self.dir / "dovecot.conf")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        if rc != 0:
            text = _tail(log) + _tail(self.log_dir / "dovecot.log")
            if "Address already in use" in text:
                raise _PortClash(text)
            raise MailStackError(f"dovecot failed to start:\n{text}")
        for name in ("imap", "imaps", "pop3", "pop3s", "lmtp"):
            self._wait_port(name, "dovecot")

    def _start_smtp(self) -> None:
        log = self.log_dir / "postfix-start.log"
        if self.smtp_backend == "postfix":
            (self.dir / "postfix-spool" / "pid").mkdir(parents=True, exist_ok=True)
            (self.dir / "postfix-spool" / "pid" / "master.pid").unlink(missing_ok=True)
            with open(log, "ab") as out:
                rc = subprocess.call(
                    ["postfix", "-c", str(self.dir / "postfix"), "start"],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                )
            if rc != 0:
                text = _tail(log) + _tail(self.log_dir / "postfix.log")
                raise MailStackError(f"postfix failed to start:\n{text}")
        else:
            log = self.log_dir / "submission.log"
            with open(log, "ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, str(HERE / "submission_server.py"), "--dir", str(self.dir)]
                    + ["--port", str(self.ports["submission"]), "--smtps-port", str(self.ports["smtps"])]
                    + ["--mx-port", str(self.ports["mx"])],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                )
            (self.dir / "run" / "submission.pid").write_text(f"{proc.pid}\n")
        for name in ("submission", "smtps", "mx"):
            self._wait_port(name, self.smtp_backend)

    def _wait_port(self, name: str, daemon: str, timeout: float = 15.0) -> None:
        port = self.ports[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        text = _tail(self.log_dir / f"{'dovecot' if daemon == 'dovecot' else 'postfix'}.log")
        if "Address already in use" in text:
            raise _PortClash(text)
        raise MailStackError(f"{daemon} did not open {name} port {port}; see {self.log_dir}\n{text}")

    # -- users and mail

    def add_user(self, address: str, password: str) -> MailUser:
        """Create or replace a mailbox: no reload, Dovecot reads the user's passwd-file on login."""
        address = address.strip().lower()
        local, _, domain = address.partition("@")
        if not local or domain not in self.domains or re.search(r"[\s:/]", address) or local.startswith("."):
            raise MailStackError(f"bad address {address!r}: must be local@{'|'.join(self.domains)}")
        # PLAIN.B64 (a Dovecot password scheme with base64 encoding) takes any password,
        # ':' and newlines included, and still lets Dovecot offer APOP and CRAM-MD5.
        line = f"{address}:{{PLAIN.B64}}{base64.b64encode(password.encode()).decode()}::::::\n"
        path = self.passwd_dir / address
        replacing = path.exists()
        tmp = path.with_name(f".{address}.tmp{os.getpid()}")
        tmp.write_text(line)
        os.chmod(tmp, 0o640)
        _chown(tmp, "root", "dovecot")
        if replacing:
            # Dovecot re-checks a passwd-file at most once per second (mtime and size).
            time.sleep(1.05)
        os.replace(tmp, path)
        with open(self.dir / "users.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # DIR/users lists every user, one passwd-file line each (read by submission_server.py).
            lines = [
                x
                for x in self.users_file.read_text().splitlines(keepends=True)
                if not x.startswith(address + ":")
            ]
            tmp = self.users_file.with_name(f"users.tmp{os.getpid()}")
            tmp.write_text("".join(lines) + line)
            os.chmod(tmp, 0o640)
            _chown(tmp, "root", "dovecot")
            os.replace(tmp, self.users_file)
        return MailUser(address, password)

    def deliver(
        self, rcpt: str, raw: bytes, *, mail_from: str = "sender@example.org", wait: float = 10.0
    ) -> None:
        """Send raw to rcpt through the MX port (no AUTH) and wait until Dovecot has stored it."""
        log = self.log_dir / "postfix.log"
        offset = log.stat().st_size if log.exists() else 0
        with smtplib.SMTP(
            self.host, self.ports["mx"], local_hostname="client.example.org", timeout=10
        ) as smtp:
            smtp.ehlo()
            code, msg = smtp.mail(mail_from)
            if code != 250:
                raise MailStackError(f"MAIL FROM refused: {code} {msg!r}")
            code, msg = smtp.rcpt(rcpt)
            if code not in (250, 251):
                raise MailStackError(f"RCPT TO {rcpt} refused: {code} {msg!r}")
            code, msg = smtp.data(_crlf(raw))
            if code != 250:
                raise MailStackError(f"DATA refused: {code} {msg!r}")
        if self.smtp_backend != "postfix" or not wait:
            return  # the aiosmtpd fallback answers DATA only after the LMTP delivery
        m = re.search(rb"queued as (\w+)", msg)
        if not m:
            raise MailStackError(f"no queue id in {msg!r}")
        self._wait_delivered(log, offset, m.group(1).decode(), wait)

    def _wait_delivered(self, log: Path, offset: int, queue_id: str, wait: float) -> None:
        pattern = re.compile(rf"{queue_id}: to=<[^>]*>.*status=(\w+)(.*)")
        deadline = time.monotonic() + wait
        while True:
            try:
                with open(log, "rb") as f:
                    f.seek(offset)
                    text = f.read().decode(errors="replace")
            except FileNotFoundError:
                text = ""
            m = pattern.search(text)
            if m and m.group(1) == "sent":
                return
            if m and m.group(1) in ("bounced", "deferred"):
                raise MailStackError(f"delivery of {queue_id} {m.group(1)}{m.group(2)}")
            if time.monotonic() > deadline:
                raise MailStackError(f"{queue_id} not delivered within {wait} s; see {log}")
            time.sleep(0.005)

    def deliver_lmtp(self, rcpt: str, raw: bytes, *, mail_from: str = "sender@example.org") -> None:
        """Deliver straight to Dovecot over LMTP: one recipient per transaction (RFC 2033 4.2)."""
        try:
            with smtplib.LMTP(
                self.host, self.ports["lmtp"], local_hostname="stack.example.test", timeout=10
            ) as lm:
                lm.sendmail(mail_from, [rcpt], _crlf(raw))
        except smtplib.SMTPException as e:
            raise MailStackError(f"LMTP delivery to {rcpt} failed: {e}") from e

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only the stack's certificate."""
        return ssl.create_default_context(cafile=self.ca_file)

    def imap_client(self, user: str | MailUser, password: str | None = None) -> IMAPClient:
        """Return an IMAPClient logged in over implicit TLS, for assertions in tests."""
        if isinstance(user, MailUser):
            user, password = user.address, user.password
        client = IMAPClient(self.host, port=self.ports["imaps"], ssl_context=self.ssl_context(), timeout=10)
        client.login(user, password or "")
        return client

    # -- config

    def _dovecot_conf(self, mail_uid: int, mail_gid: int) -> str:
        d, p = self.dir, self.ports
        instance = hashlib.md5(str(d).encode(), usedforsecurity=False).hexdigest()[:8]
        idle_check = os.environ.get("MAILSTACK_IDLE_CHECK_INTERVAL", "30 secs")
        # Load tests hold more than Dovecot's default 100 imap processes (one per IMAP connection).
        process_limit = int(os.environ.get("MAILSTACK_PROCESS_LIMIT", "100"))
        return f"""# generated by tests/mailstack/stack.py: standalone, no /etc/dovecot includes
instance_name = mailstack-{instance}
base_dir = {d}/run/dovecot
state_dir = {d}/state/dovecot
log_path = {d}/log/dovecot.log
info_log_path = {d}/log/dovecot.log
debug_log_path = {d}/log/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
shutdown_clients = yes
default_process_limit = {process_limit}
default_client_limit = {max(1000, 4 * process_limit)}

# Running as root: login processes drop to dovenull, internal ones to dovecot, mail access
# to 'mail' (Dovecot refuses uid 0 for mail).
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {mail_uid}
first_valid_gid = {mail_gid}
mail_uid = {mail_uid}
mail_gid = {mail_gid}

ssl = yes
ssl_cert = <{d}/ssl/cert.pem
ssl_key = <{d}/ssl/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login apop cram-md5
auth_username_format = %Lu
auth_failure_delay = 0 secs

# One passwd-file per user: Dovecot checks a passwd-file for changes at most once a second,
# so users added in quick succession to one shared file would stay unknown for up to 1 s.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {d}/passwd.d/%Lu
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {d}/passwd.d/%Lu
  default_fields = uid={mail_uid} gid={mail_gid} home={d}/mail/%Lu
}}

mail_location = maildir:~/Maildir
mail_fsync = never
mail_max_userip_connections = 1000
mailbox_idle_check_interval = {idle_check}

namespace inbox {{
  inbox = yes
  separator = /
  prefix =
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \\Archive
    auto = subscribe
  }}
}}

protocol imap {{
  mail_max_userip_connections = 1000
  imap_idle_notify_interval = 2 mins
}}
protocol pop3 {{
  pop3_uidl_format = %08Xu%08Xv
}}
protocol lmtp {{
  postmaster_address = postmaster@{DEFAULT_DOMAIN}
}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {p["imap"]}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {p["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {p["pop3"]}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {p["pop3s"]}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {p["lmtp"]}
  }}
}}
# After one failed login from 127.0.0.1 the anvil auth penalty delays every later login
# from that address by seconds: off for tests.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  # SASL for Postfix submission (smtpd runs as 'postfix')
  unix_listener auth-smtp {{
    mode = 0666
  }}
}}
"""

    def _postfix_main(self) -> str:
        d = self.dir
        return f"""# generated by tests/mailstack/stack.py: sandboxed instance (postfix -c {d}/postfix)
compatibility_level = 3.6
queue_directory = {d}/postfix-spool
data_directory = {d}/postfix-data
meta_directory = /etc/postfix
maillog_file = {d}/log/postfix.log
maillog_file_prefixes = {d}/log
myhostname = {HOSTNAME}
mydomain = {DEFAULT_DOMAIN}
myorigin = $mydomain
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Nothing leaves the machine: everything not local bounces at once.
relayhost =
default_transport = error:5.7.1 test mail stack does not deliver off-host
relay_transport = error:5.7.1 test mail stack does not deliver off-host
local_transport = error:5.1.1 no local delivery in the test stack
virtual_mailbox_domains = {" ".join(self.domains)}
virtual_mailbox_maps = regexp:{d}/postfix/vmailbox
virtual_transport = lmtp:unix:{d}/run/dovecot/lmtp
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
# Submission offers SMTPUTF8, but Dovecot 2.3's LMTP does not: mail sent with SMTPUTF8
# (RFC 6531) is accepted and then bounced, as on real servers of that vintage.
smtputf8_enable = yes
message_size_limit = 52428800
smtpd_banner = $myhostname ESMTP test
smtpd_tls_cert_file = {d}/ssl/cert.pem
smtpd_tls_key_file = {d}/ssl/key.pem
smtpd_tls_security_level = may
smtp_tls_security_level = none
smtpd_sasl_type = dovecot
smtpd_sasl_path = {d}/run/dovecot/auth-smtp
smtpd_sasl_auth_enable = no
broken_sasl_auth_clients = no
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = reject_unlisted_recipient
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 60s
lmtp_destination_concurrency_limit = 20
# Answer a failed AUTH at once (tests try wrong passwords on purpose).
smtpd_error_sleep_time = 0s
"""

    def _postfix_master(self) -> str:
        p = self.ports
        submission_opts = """  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject"""
        return f"""# generated by tests/mailstack/stack.py: no chroot, loopback-only listeners
127.0.0.1:{p["submission"]} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=may
  -o smtpd_tls_auth_only=no
{submission_opts}
127.0.0.1:{p["smtps"]} inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
{submission_opts}
127.0.0.1:{p["mx"]} inet n - n - - smtpd
  -o syslog_name=postfix/mx
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class _PortClash(MailStackError):
    """Another process took one of the chosen ports between the choice and the bind."""


def _which(tool: str) -> bool:
    paths = os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin"]
    return any(os.access(os.path.join(p, tool), os.X_OK) for p in paths)


def _ids(user: str) -> tuple[int, int]:
    import pwd

    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise MailStackError(f"system user {user!r} does not exist") from None
    return pw.pw_uid, pw.pw_gid


def _chown(path: Path, user: str, group: str) -> None:
    import grp

    try:
        os.chown(path, _ids(user)[0], grp.getgrnam(group).gr_gid)
    except KeyError:
        pass


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return ""


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False
