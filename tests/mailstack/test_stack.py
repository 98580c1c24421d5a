"""The test mail stack itself: users without reloads, both delivery paths, seeding and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.mailstack.seed import ALICE, BOB, build_corpus
from tests.mailstack.stack import MailStack, MailStackError

pytestmark = pytest.mark.mailstack

ROOT = Path(__file__).resolve().parents[2]


def inbox_subjects(stack: MailStack, user) -> list[bytes]:
    with stack.imap_client(user) as client:
        client.select_folder("INBOX", readonly=True)
        uids = client.search()
        data = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]) if uids else {}
    return [d[b"BODY[HEADER.FIELDS (SUBJECT)]"].strip() for _, d in sorted(data.items())]


def test_users_work_at_once_and_passwords_can_change(mailstack, mail_user):
    users = [mail_user() for _ in range(5)]
    for u in users:
        mailstack.imap_client(u).logout()
    mailstack.add_user(users[0].address, "changed: with colon")
    mailstack.imap_client(users[0].address, "changed: with colon").logout()


def test_deliver_goes_through_the_mx_port_and_waits_for_storage(mailstack, mail_user):
    user = mail_user()
    mailstack.deliver(user.address, b"Subject: via mx\n\nbody\n")
    mailstack.deliver_lmtp(user.address, b"Subject: via lmtp\r\n\r\nbody\r\n")
    assert inbox_subjects(mailstack, user) == [b"Subject: via mx", b"Subject: via lmtp"]


def test_delivery_to_an_unknown_user_fails_loudly(mailstack):
    with pytest.raises(MailStackError):
        mailstack.deliver_lmtp("nobody@example.test", b"Subject: x\r\n\r\nx\r\n")
    with pytest.raises(MailStackError, match="bounced|refused"):
        mailstack.deliver("nobody@example.test", b"Subject: x\r\n\r\nx\r\n")


def test_addresses_outside_the_stack_domains_are_refused(mailstack):
    with pytest.raises(MailStackError):
        mailstack.add_user("someone@example.com", "x")


def test_the_corpus_has_threads_attachments_html_and_non_ascii():
    mails = build_corpus()
    raws = [m.msg.as_bytes() for m in mails]
    assert any(b"In-Reply-To:" in r for r in raws)
    assert any(b"filename*=utf-8''%C3%9Cberblick.txt" in r for r in raws)
    assert any(b"text/html" in r for r in raws)
    assert any(b"=?utf-8?" in r for r in raws)
    assert {who.address for m in mails for who, _, _ in m.places} == {ALICE.address, BOB.address}


def test_cli_starts_seeds_reports_and_stops():
    state = Path(tempfile.mkdtemp(prefix="mailstack-cli-", dir="/tmp"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-m", "tests.mailstack"]
    try:
        out = subprocess.run([*run, "start", str(state), "--seed"], env=env, capture_output=True, check=True)
        info = json.loads(out.stdout)
        assert info["users"] == {ALICE.address: ALICE.password, BOB.address: BOB.password}
        stack = MailStack(state)
        assert stack.ports == info["ports"]
        assert len(inbox_subjects(stack, ALICE)) > 10
        status = subprocess.run([*run, "status", str(state)], env=env, capture_output=True)
        assert status.returncode == 0 and json.loads(status.stdout)["running"]
    finally:
        subprocess.run([*run, "stop", str(state)], env=env, capture_output=True, check=True)
    status = subprocess.run([*run, "status", str(state)], env=env, capture_output=True)
    assert status.returncode == 1
    subprocess.run(["rm", "-rf", str(state)], check=True)
