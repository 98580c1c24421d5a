"""The outbox: messages being written (drafts) and sent, as a state machine, and their attachments.

draft ──send──► queued (send_at: undo window or "send later") ──claim──► sending (lease)
   ▲              │ undo                                                   │
   └──────────────┘                                  ┌─────────────────────┼──────────────┐
                                                     ▼                     ▼              ▼
                                      retrying (reason, next_attempt_at)  sent          failed
                                                     │ claim                 (reply, refused, uncertain)
                                                     └──► sending
Every transition is a conditional UPDATE on (id, state, attempts): exactly one worker wins a claim.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Identity, MailAccount


class State(models.TextChoices):
    DRAFT = "draft", _("Draft")
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    RETRYING = "retrying", _("Waiting to retry")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Not sent")


class Kind(models.TextChoices):
    NEW = "new", _("New message")
    REPLY = "reply", _("Reply")
    REPLY_ALL = "reply_all", _("Reply all")
    FORWARD = "forward", _("Forward")
    FORWARD_ATTACHED = "forward_attached", _("Forward as attachment")
    DRAFT = "draft", _("Draft")


class OutgoingMessage(models.Model):
    """One message a person writes: a draft until Send, then an outbox entry until sent or failed.

    `raw` holds the exact bytes submitted (no Bcc header); `rcpts` the envelope (To+Cc+Bcc).
    `data_started_at` is set (and committed) just before the DATA command of an attempt: an
    attempt interrupted after that point may have reached the server.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="outgoing")
    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="outgoing")
    identity = models.ForeignKey(Identity, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.NEW)
    state = models.CharField(max_length=8, choices=State.choices, default=State.DRAFT)

    to = models.TextField(blank=True)
    cc = models.TextField(blank=True)
    bcc = models.TextField(blank=True)
    subject = models.CharField(max_length=998, blank=True)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    html_mode = models.BooleanField(default=False)

    message_id = models.CharField(max_length=255, unique=True)
    in_reply_to = models.CharField(max_length=500, blank=True)
    references = models.TextField(blank=True)  # space-separated ids, no brackets
    source_message = models.ForeignKey(
        "mail.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )  # the message replied to or forwarded
    draft_message = models.ForeignKey(
        "mail.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )  # the current copy in the Drafts folder
    draft_hash = models.CharField(max_length=64, blank=True)

    raw = models.BinaryField(blank=True, default=b"")
    mail_from = models.CharField(max_length=320, blank=True)
    rcpts = models.JSONField(default=list, blank=True)
    recipient_count = models.PositiveIntegerField(default=0)

    send_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    data_started_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    server_reply = models.TextField(blank=True)
    refused = models.JSONField(default=dict, blank=True)  # {address: [code, text]}
    uncertain = models.BooleanField(default=False)  # failed because delivery could not be confirmed
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["state", "send_at"], name="outgoing_state_send_at"),
            models.Index(fields=["user", "queued_at"], name="outgoing_user_queued"),
        ]

    def __str__(self) -> str:
        return f"{self.get_state_display()}: {self.subject[:40]}"

    def get_absolute_url(self) -> str:
        return reverse("compose_edit", args=[self.pk])

    @property
    def is_editable(self) -> bool:
        return self.state == State.DRAFT

    @property
    def in_outbox(self) -> bool:
        return self.state in (State.QUEUED, State.SENDING, State.RETRYING)

    @property
    def undo_seconds_left(self) -> int:
        if self.state != State.QUEUED or self.send_at is None:
            return 0
        return max(0, int((self.send_at - timezone.now()).total_seconds() + 0.999))


class Attachment(models.Model):
    """A file attached to an outgoing message, kept in the database until the message is gone."""

    message = models.ForeignKey(OutgoingMessage, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    data = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.filename
