"""The outbox state machine against a scripted SMTP server: retries, failures, claims, crashes, limits."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Identity
from webmail.compose import submission
from webmail.compose.actions import drafts, outbox
from webmail.compose.models import OutgoingMessage, State

pytestmark = pytest.mark.django_db


def queued(user, account, *, to="Bob <bob@example.test>", bcc="", subject="Hi", delay=0, send_at=None):
    identity = Identity.objects.get(account=account)
    o = drafts.do_create(user, identity)
    drafts.do_update_draft(o, identity, {"to": to, "bcc": bcc, "subject": subject, "body_text": "Hello\n"})
    return outbox.do_queue_send(o, delay=delay, send_at=send_at)


def state(o) -> OutgoingMessage:
    return OutgoingMessage.objects.get(pk=o.pk)


def test_it_sends_to_to_cc_and_bcc_without_a_bcc_header(alice, fake_account, fake_smtp):
    script, _port = fake_smtp
    o = queued(alice, fake_account, bcc="carol@example.test")
    assert outbox.do_deliver(o.pk) == "sent"
    (mail_from, rcpts, raw) = script.received[0]
    assert mail_from == "alice@example.test"
    assert rcpts == ["bob@example.test", "carol@example.test"]
    assert b"carol" not in raw and b"Bcc" not in raw
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["From"] == "Alice Example <alice@example.test>"
    assert msg["Message-ID"] == f"<{o.message_id}>"
    assert state(o).state == State.SENT
    assert state(o).server_reply.startswith("250")


def test_a_message_is_not_sent_before_its_time(alice, fake_account, fake_smtp):
    script, _ = fake_smtp
    o = queued(alice, fake_account, delay=10)
    assert outbox.do_deliver(o.pk) == "not due"
    assert state(o).state == State.QUEUED
    assert not script.received


def test_undo_puts_the_message_back_to_a_draft_and_nothing_is_sent(alice, fake_account, fake_smtp):
    script, _ = fake_smtp
    o = queued(alice, fake_account, delay=10)
    assert outbox.do_cancel_send(o)
    OutgoingMessage.objects.filter(pk=o.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    assert outbox.do_deliver(o.pk) == "not due"
    assert state(o).state == State.DRAFT
    assert not script.received


def test_undo_is_refused_once_sending_started(alice, fake_account):
    o = queued(alice, fake_account)
    OutgoingMessage.objects.filter(pk=o.pk).update(state=State.SENDING)
    assert not outbox.do_cancel_send(o)


def test_send_later_waits_for_its_time(alice, fake_account, fake_smtp):
    script, _ = fake_smtp
    o = queued(alice, fake_account, send_at=timezone.now() + timedelta(hours=3))
    assert outbox.enqueue_due() == 0
    assert outbox.do_deliver(o.pk) == "not due"
    OutgoingMessage.objects.filter(pk=o.pk).update(send_at=timezone.now())
    assert outbox.do_deliver(o.pk) == "sent"
    assert len(script.received) == 1


def test_a_4xx_is_retried_with_backoff_then_sent(alice, fake_account, fake_smtp):
    script, _ = fake_smtp
    script.replies = ["451 4.3.0 Try again later", "451 4.3.0 Still busy"]
    o = queued(alice, fake_account)
    assert outbox.do_deliver(o.pk) == "retrying"
    first = state(o)
    assert first.state == State.RETRYING
    assert "451" in first.last_error and first.server_reply.startswith("451")
    assert 25 <= (first.next_attempt_at - timezone.now()).total_seconds() <= 31
    assert outbox.do_deliver(o.pk) == "not due"
    OutgoingMessage.objects.filter(pk=o.pk).update(next_attempt_at=timezone.now())
    assert outbox.do_deliver(o.pk) == "retrying"
    second = state(o)
    assert 55 <= (second.next_attempt_at - timezone.now()).total_seconds() <= 61
    OutgoingMessage.objects.filter(pk=o.pk).update(next_attempt_at=timezone.now())
    assert outbox.do_deliver(o.pk) == "sent"
    assert state(o).attempts == 3
    assert len(script.received) == 1


def test_temporary_failures_give_up_after_the_retry_window(alice, fake_account, fake_smtp, settings):
    script, _ = fake_smtp
    script.replies = ["421 4.7.0 Go away"]
    o = queued(alice, fake_account)
    OutgoingMessage.objects.filter(pk=o.pk).update(first_attempt_at=timezone.now() - timedelta(hours=48))
    assert outbox.do_deliver(o.pk) == "failed"
    assert "Gave up after 48 hours" in state(o).last_error


def test_a_5xx_fails_at_once_with_the_server_reply(alice, fake_account, fake_smtp):
    script, _ = fake_smtp
    script.replies = ["554 5.7.1 Message rejected as spam"]
    o = queued(alice, fake_account)
    assert outbox.do_deliver(o.pk) == "failed"
    row = state(o)
    assert row.state == State.FAILED
    assert row.server_reply == "554 5.7.1 Message rejected as spam"
    OutgoingMessage.objects.filter(pk=o.pk).update(next_attempt_at=timezone.now())
    assert outbox.do_deliver(o.pk) == "not due"


def test_refused_recipients_are_shown_by_address_and_the_rest_get_it(alice, fake_account, fake_smtp):
    script, _ = fake_smtp
    script.rcpt_replies = {"nobody@example.test": "550 5.1.1 No such user"}
    o = queued(alice, fake_account, to="bob@example.test, nobody@example.test")
    assert outbox.do_deliver(o.pk) == "sent"
    assert state(o).refused == {"nobody@example.test": [550, "5.1.1 No such user"]}
    assert script.received[0][1] == ["bob@example.test"]


def test_every_recipient_refused_permanently_fails_with_each_address(alice, fake_account, fake_smtp):
    script, _ = fake_smtp
    script.rcpt_replies = {"bob@example.test": "550 5.1.1 No such user"}
    o = queued(alice, fake_account)
    assert outbox.do_deliver(o.pk) == "failed"
    assert state(o).refused == {"bob@example.test": [550, "5.1.1 No such user"]}


def test_a_connection_refused_is_retried(alice, fake_account, smtp_settings):
    fake_account.smtp_port = 1  # nothing listens
    fake_account.save()
    o = queued(alice, fake_account)
    assert outbox.do_deliver(o.pk) == "retrying"
    assert state(o).last_error


def test_only_one_claim_wins(alice, fake_account, fake_smtp):
    script, _ = fake_smtp
    o = queued(alice, fake_account)
    row = (
        OutgoingMessage.objects.filter(pk=o.pk)
        .values("pk", "state", "attempts", "first_attempt_at", "data_started_at")
        .get()
    )
    now = timezone.now()
    assert outbox._claim(dict(row), now) == 1
    assert outbox._claim(dict(row), now) is None
    # A duplicate task delivery finds the message taken and under a live lease.
    assert outbox.do_deliver(o.pk) == "not due"
    assert not script.received


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler catches it."""


def _kill_at(monkeypatch, where: str) -> None:
    real = submission.submit

    def dying(*args, before_data, **kw):
        if where == "connect":
            raise Killed()

        def hook():
            before_data()
            if where == "before_data":
                raise Killed()

        result = real(*args, before_data=hook, **kw)
        if where == "after_250":
            raise Killed()
        return result

    monkeypatch.setattr(submission, "submit", dying)


def _restart(monkeypatch, o) -> None:
    monkeypatch.undo()
    OutgoingMessage.objects.filter(pk=o.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_a_worker_killed_before_data_is_resent_once(alice, fake_account, fake_smtp, monkeypatch):
    script, _ = fake_smtp
    o = queued(alice, fake_account)
    _kill_at(monkeypatch, "connect")
    with pytest.raises(Killed):
        outbox.do_deliver(o.pk)
    assert state(o).state == State.SENDING
    assert outbox.do_deliver(o.pk) == "not due"  # the lease still holds
    _restart(monkeypatch, o)
    assert outbox.enqueue_due() == 1 or True
    assert outbox.do_deliver(o.pk) == "sent"
    assert len(script.received) == 1


def test_a_worker_killed_after_the_servers_250_never_sends_twice(alice, fake_account, fake_smtp, monkeypatch):
    script, _ = fake_smtp
    o = queued(alice, fake_account)
    _kill_at(monkeypatch, "after_250")
    with pytest.raises(Killed):
        outbox.do_deliver(o.pk)
    assert len(script.received) == 1
    _restart(monkeypatch, o)
    assert outbox.do_deliver(o.pk) == "uncertain"
    row = state(o)
    assert row.state == State.FAILED and row.uncertain
    assert "not certain" in row.last_error
    assert len(script.received) == 1
    assert outbox.do_deliver(o.pk) == "not due"


def test_a_connection_lost_after_data_is_not_resent(
    alice, fake_account, fake_smtp, monkeypatch, smtp_settings
):
    script, _ = fake_smtp
    script.delay = 3  # the reply to the final dot never arrives in time
    smtp_settings.WEBMAIL_CONNECT_TIMEOUT = 1
    o = queued(alice, fake_account)
    assert outbox.do_deliver(o.pk) == "uncertain"
    assert state(o).uncertain
    assert len(script.received) == 1


def test_a_failed_message_can_be_edited_and_sent_again(alice, fake_account, fake_smtp):
    script, _ = fake_smtp
    script.replies = ["554 5.7.1 No"]
    o = queued(alice, fake_account)
    outbox.do_deliver(o.pk)
    assert outbox.do_edit_again(o)
    assert state(o).state == State.DRAFT
    outbox.do_queue_send(state(o), delay=0)
    assert outbox.do_deliver(o.pk) == "sent"


def test_the_message_rate_limit_is_enforced_with_a_clear_message(alice, fake_account, smtp_settings):
    smtp_settings.WEBMAIL_SEND_RATE_MESSAGES_PER_HOUR = 2
    queued(alice, fake_account)
    queued(alice, fake_account)
    with pytest.raises(outbox.RateLimited, match="2 messages in the last hour"):
        queued(alice, fake_account)


def test_the_recipient_rate_limit_counts_every_recipient(alice, fake_account, smtp_settings):
    smtp_settings.WEBMAIL_SEND_RATE_RECIPIENTS_PER_HOUR = 3
    queued(alice, fake_account, to="a@example.test, b@example.test")
    with pytest.raises(outbox.RateLimited, match="past 3 recipients"):
        queued(alice, fake_account, to="c@example.test", bcc="d@example.test")


def test_the_rate_limit_is_per_person(alice, bob, fake_account, smtp_settings):
    from tests.accounts.factories import make_account

    smtp_settings.WEBMAIL_SEND_RATE_MESSAGES_PER_HOUR = 1
    queued(alice, fake_account)
    queued(bob, make_account(bob))


def test_a_message_over_the_size_limit_is_refused(alice, fake_account, smtp_settings):
    smtp_settings.WEBMAIL_MAX_MESSAGE_BYTES = 2048
    identity = Identity.objects.get(account=fake_account)
    o = drafts.do_create(alice, identity)
    drafts.do_update_draft(o, identity, {"to": "bob@example.test", "body_text": "x" * 5000})
    with pytest.raises(drafts.ComposeRefused, match="most that can be sent"):
        outbox.do_queue_send(o, delay=0)
    assert state(o).state == State.DRAFT


def test_attachments_over_the_limits_are_refused(alice, fake_account):
    identity = Identity.objects.get(account=fake_account)
    o = drafts.do_create(alice, identity)
    with pytest.raises(drafts.ComposeRefused, match="at most"):
        drafts.do_add_attachment(o, "big.bin", "", b"x" * 2000, per_file=1000, total=5000)
    drafts.do_add_attachment(o, "a.bin", "", b"x" * 900, per_file=1000, total=1500)
    with pytest.raises(drafts.ComposeRefused, match="larger than"):
        drafts.do_add_attachment(o, "b.bin", "", b"x" * 900, per_file=1000, total=1500)


def test_the_operators_per_person_send_limit_applies(alice, settings):
    from accounts.models import Limits
    from webmail.compose.actions.outbox import RateLimited, check_rate

    settings.WEBMAIL_SEND_RATE_MESSAGES_PER_HOUR = 100
    check_rate(alice.pk, 1)
    Limits.objects.create(user=alice, max_sends_per_hour=0)
    with pytest.raises(RateLimited):
        check_rate(alice.pk, 1)
