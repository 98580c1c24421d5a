#!/usr/bin/env python3
"""Fallback SMTP submission server for the test mail stack (MAILSTACK_SMTP=aiosmtpd in stack.py).

 * submission  127.0.0.1:PORT       AUTH PLAIN/LOGIN required, STARTTLS offered (not required)
 * smtps       127.0.0.1:SMTPS_PORT implicit TLS, AUTH required
 * mx          127.0.0.1:MX_PORT    no AUTH, local recipients only (inject "foreign" mail)

Passwords are checked against Dovecot's auth server (DIR/run/dovecot/auth-smtp, the
same socket Postfix uses), so the stack's passwd files stay the single source of truth.
Accepted mail is delivered to Dovecot over LMTP (DIR/run/dovecot/lmtp), one LMTP
transaction per recipient. Nothing is ever sent off-host: non-local recipients are
rejected at RCPT.
"""

import argparse
import asyncio
import base64
import email.utils
import logging
import os
import signal
import smtplib
import socket
import ssl
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

log = logging.getLogger("submission")


class DovecotAuth:
    """Minimal Dovecot auth-client protocol (v1.2) over a unix socket."""

    def __init__(self, path):
        self.path = path
        self._id = 0

    def check(self, user: str, password: str, peer_ip: str = "127.0.0.1") -> bool:
        self._id += 1
        resp = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.path)
            s.sendall(f"VERSION\t1\t2\nCPID\t{os.getpid()}\n".encode())
            buf = b""
            while b"DONE\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                buf += chunk
            s.sendall(
                f"AUTH\t{self._id}\tPLAIN\tservice=smtp\tsecured\trip={peer_ip}\tresp={resp}\n".encode()
            )
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                buf += chunk
            line = buf.split(b"\n", 1)[0].decode(errors="replace")
            return line.startswith(f"OK\t{self._id}")


class Authenticator:
    def __init__(self, auth: DovecotAuth):
        self.auth = auth

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode(errors="replace")
        pw = auth_data.password.decode(errors="replace")
        peer = session.peer[0] if session.peer else "127.0.0.1"
        try:
            ok = self.auth.check(user, pw, peer)
        except OSError as e:
            log.error("dovecot auth socket error: %s", e)
            ok = False
        log.info("auth %s user=%s ok=%s", mechanism, user, ok)
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        # handled=False -> aiosmtpd itself answers 535 (handled=True would leave the client hanging)
        return AuthResult(success=False, handled=False)


class Users:
    def __init__(self, users_file):
        self.users_file = users_file
        self._mtime = None
        self.users, self.domains = set(), set()

    def _load(self):
        st = os.stat(self.users_file).st_mtime
        if st != self._mtime:
            users = set()
            with open(self.users_file) as f:
                for line in f:
                    u = line.split(":", 1)[0].strip().lower()
                    if u:
                        users.add(u)
            self.users = users
            self.domains = {u.split("@", 1)[1] for u in users if "@" in u} | {"example.test"}
            self._mtime = st

    def is_local_domain(self, addr):
        self._load()
        return "@" in addr and addr.rsplit("@", 1)[1].lower() in self.domains

    def exists(self, addr):
        self._load()
        return addr.lower() in self.users


class Handler:
    def __init__(self, users: Users, lmtp_path: str, mode: str, hostname: str):
        self.users, self.lmtp_path, self.mode, self.hostname = users, lmtp_path, mode, hostname

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not self.users.is_local_domain(address):
            if self.mode == "mx" or not session.authenticated:
                return "554 5.7.1 Relay access denied"
            return "550 5.7.1 test mail stack does not deliver off-host"
        if not self.users.exists(address):
            return "550 5.1.1 User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def _deliver(self, mail_from, rcpts, data: bytes):
        results = {}
        for rcpt in rcpts:  # one LMTP transaction per rcpt: smtplib reads a single DATA reply
            lm = smtplib.LMTP(self.lmtp_path)
            try:
                lm.sendmail(mail_from, [rcpt], data)
                results[rcpt] = None
            except smtplib.SMTPResponseException as e:
                results[rcpt] = f"{e.smtp_code} {e.smtp_error.decode(errors='replace')}"
            except smtplib.SMTPRecipientsRefused as e:
                code, msg = e.recipients[rcpt]
                results[rcpt] = f"{code} {msg.decode(errors='replace')}"
            finally:
                try:
                    lm.quit()
                except Exception:
                    pass
        return results

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        head = data.split(b"\r\n\r\n", 1)[0].lower()
        extra = b""
        if b"\nmessage-id:" not in b"\n" + head:
            extra += f"Message-ID: {email.utils.make_msgid(domain=self.hostname)}\r\n".encode()
        if b"\ndate:" not in b"\n" + head:
            extra += f"Date: {email.utils.formatdate(localtime=True)}\r\n".encode()
        proto = "ESMTPSA" if session.authenticated else "ESMTP"
        if getattr(session, "ssl", None):
            proto = proto.replace("ESMTP", "ESMTPS") if "ESMTPS" not in proto else proto
        received = (
            f"Received: from {session.host_name or 'unknown'} ([{session.peer[0]}])\r\n"
            f"\tby {self.hostname} (aiosmtpd) with {proto};\r\n"
            f"\t{email.utils.formatdate(localtime=True)}\r\n"
        ).encode()
        payload = received + extra + data
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(
            None, self._deliver, envelope.mail_from or "", list(envelope.rcpt_tos), payload
        )
        failed = {r: e for r, e in results.items() if e}
        for r, e in results.items():
            log.info("lmtp from=%s to=%s size=%d status=%s", envelope.mail_from, r, len(payload), e or "sent")
        if failed and len(failed) == len(results):
            first = next(iter(failed.values()))
            return first if first[:1] in "45" else "451 4.3.0 LMTP delivery failed"
        return "250 2.0.0 OK delivered"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=10587)
    ap.add_argument("--smtps-port", type=int, default=10465)
    ap.add_argument("--mx-port", type=int, default=10025)
    ap.add_argument("--hostname", default="mail.example.test")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    d = os.path.abspath(a.dir)
    users = Users(os.path.join(d, "users"))
    auth = Authenticator(DovecotAuth(os.path.join(d, "run/dovecot/auth-smtp")))
    lmtp = os.path.join(d, "run/dovecot/lmtp")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(d, "ssl/cert.pem"), os.path.join(d, "ssl/key.pem"))
    common = dict(
        hostname=a.host,
        server_hostname=a.hostname,
        data_size_limit=52428800,
        decode_data=False,
        ident="mail.example.test ESMTP test (aiosmtpd)",
    )
    ctrls = [
        Controller(
            Handler(users, lmtp, "submission", a.hostname),
            port=a.port,
            authenticator=auth,
            auth_required=True,
            auth_require_tls=False,
            tls_context=ctx,
            require_starttls=False,
            enable_SMTPUTF8=True,
            **common,
        ),
        Controller(
            Handler(users, lmtp, "submission", a.hostname),
            port=a.smtps_port,
            authenticator=auth,
            auth_required=True,
            auth_require_tls=False,
            ssl_context=ctx,
            enable_SMTPUTF8=True,
            **common,
        ),
        Controller(Handler(users, lmtp, "mx", a.hostname), port=a.mx_port, enable_SMTPUTF8=True, **common),
    ]
    for c in ctrls:
        c.start()
    log.info("listening submission=%d smtps=%d mx=%d", a.port, a.smtps_port, a.mx_port)
    stop = {"flag": False}

    def _term(*_):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _term)
    while not stop["flag"]:
        time.sleep(0.2)
    for c in ctrls:
        c.stop()
    log.info("stopped")


if __name__ == "__main__":
    main()
