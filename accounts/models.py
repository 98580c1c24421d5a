"""People's mail accounts, their From identities, connection checks and the security audit log."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import credentials

PORT_VALIDATORS = [MinValueValidator(1), MaxValueValidator(65535)]


class Protocol(models.TextChoices):
    IMAP = "imap", "IMAP"
    POP3 = "pop3", "POP3"


class Security(models.TextChoices):
    TLS = "tls", _("SSL/TLS")
    STARTTLS = "starttls", _("STARTTLS")
    NONE = "none", _("None (unencrypted)")


class LeaveOnServer(models.TextChoices):
    KEEP = "keep", _("Keep a copy on the server")
    DELETE_AFTER_DAYS = "days", _("Delete from the server after some days")
    DELETE_NOW = "delete", _("Delete from the server once downloaded")


class AccountState(models.TextChoices):
    NEW = "new", _("Not yet synchronised")
    OK = "ok", _("Working")
    CONNECTION_FAILING = "connection_failing", _("Cannot reach the server")
    AUTH_FAILED = "auth_failed", _("Password not accepted")
    DISABLED = "disabled", _("Disabled")


class MailAccount(models.Model):
    """One mailbox a person reads here: where to fetch mail from and where to submit it.

    Passwords are stored only as Fernet tokens; read them with get_incoming_password() and
    get_smtp_password(), which templates cannot call (alters_data).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_accounts")
    name = models.CharField(_("account name"), max_length=100)
    email = models.EmailField(_("email address"), max_length=254)
    display_name = models.CharField(_("your name"), max_length=200, blank=True)

    incoming_protocol = models.CharField(
        _("incoming protocol"), max_length=4, choices=Protocol.choices, default=Protocol.IMAP
    )
    incoming_host = models.CharField(_("incoming server"), max_length=253)
    incoming_port = models.PositiveIntegerField(_("incoming port"), validators=PORT_VALIDATORS)
    incoming_security = models.CharField(
        _("incoming security"), max_length=8, choices=Security.choices, default=Security.TLS
    )
    incoming_username = models.CharField(_("incoming user name"), max_length=254)
    incoming_password_token = models.TextField(blank=True, editable=False)

    smtp_host = models.CharField(_("outgoing (SMTP) server"), max_length=253)
    smtp_port = models.PositiveIntegerField(_("outgoing port"), validators=PORT_VALIDATORS)
    smtp_security = models.CharField(
        _("outgoing security"), max_length=8, choices=Security.choices, default=Security.STARTTLS
    )
    smtp_username = models.CharField(_("outgoing user name"), max_length=254, blank=True)
    smtp_password_token = models.TextField(blank=True, editable=False)

    # POP3 only: what happens to downloaded mail on the server.
    pop3_leave_on_server = models.CharField(
        _("after downloading (POP3)"), max_length=6, choices=LeaveOnServer.choices, default=LeaveOnServer.KEEP
    )
    pop3_delete_after_days = models.PositiveIntegerField(_("days to keep on the server (POP3)"), default=14)

    state = models.CharField(max_length=20, choices=AccountState.choices, default=AccountState.NEW)
    state_reason = models.TextField(blank=True)
    state_changed_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user_id", "name", "id"]
        indexes = [models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def get_absolute_url(self) -> str:
        return reverse("mail_account_edit", args=[self.pk])

    def set_incoming_password(self, password: str) -> None:
        """Store PASSWORD encrypted; the caller saves."""
        self.incoming_password_token = credentials.encrypt(password)

    def set_smtp_password(self, password: str) -> None:
        """Store PASSWORD encrypted; the caller saves."""
        self.smtp_password_token = credentials.encrypt(password)

    def get_incoming_password(self) -> str:
        """Return the decrypted incoming password (for protocol code only)."""
        return credentials.decrypt(self.incoming_password_token)

    get_incoming_password.alters_data = True  # type: ignore[attr-defined]  # templates never call it

    def get_smtp_password(self) -> str:
        """Return the decrypted SMTP password, falling back to the incoming one when blank."""
        if self.smtp_password_token:
            return credentials.decrypt(self.smtp_password_token)
        return self.get_incoming_password()

    get_smtp_password.alters_data = True  # type: ignore[attr-defined]

    @property
    def has_incoming_password(self) -> bool:
        return bool(self.incoming_password_token)


class Identity(models.Model):
    """A From address a person sends as, with its display name, Reply-To and signature."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="identities")
    display_name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("email address"), max_length=254)
    reply_to = models.EmailField(_("reply-to address"), max_length=254, blank=True)
    signature_text = models.TextField(_("signature (plain text)"), blank=True)
    signature_html = models.TextField(_("signature (HTML)"), blank=True)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["account_id", "-is_default", "email", "id"]
        verbose_name_plural = "identities"

    def __str__(self) -> str:
        return f"{self.display_name} <{self.email}>" if self.display_name else self.email


class ConnectionCheck(models.Model):
    """One run of "Test connection": requested by a view, carried out by a Celery task.

    `incoming` and `smtp` hold {"ok": bool, "kind": str, "message": str} once finished.
    """

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="connection_checks")
    requested_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    incoming = models.JSONField(default=dict, blank=True)
    smtp = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        get_latest_by = "requested_at"

    def __str__(self) -> str:
        return f"check {self.pk} of account {self.account_id}"

    @property
    def done(self) -> bool:
        return self.finished_at is not None

    @property
    def ok(self) -> bool:
        return self.done and bool(self.incoming.get("ok")) and bool(self.smtp.get("ok"))


class AuditEvent(models.Model):
    """A security-relevant event, kept for the person and the operator."""

    class Kind(models.TextChoices):
        LOGIN = "login", _("Signed in")
        LOGIN_FAILED = "login_failed", _("Failed sign-in")
        LOGOUT = "logout", _("Signed out")
        SIGNUP = "signup", _("Signed up")
        PASSWORD_CHANGED = "password_changed", _("Password changed")
        MAIL_ACCOUNT_ADDED = "mail_account_added", _("Mail account added")
        MAIL_ACCOUNT_CHANGED = "mail_account_changed", _("Mail account changed")
        MAIL_ACCOUNT_REMOVED = "mail_account_removed", _("Mail account removed")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.user_id} {self.at:%Y-%m-%d %H:%M}"
