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
        EMAIL_VERIFIED = "email_verified", _("Email address verified")
        INVITE_CREATED = "invite_created", _("Invite created")
        TWO_FACTOR_ENABLED = "2fa_enabled", _("Two-factor authentication turned on")
        TWO_FACTOR_DISABLED = "2fa_disabled", _("Two-factor authentication turned off")
        TWO_FACTOR_FAILED = "2fa_failed", _("Wrong authentication code")
        RECOVERY_CODES_CREATED = "recovery_codes", _("New recovery codes made")
        RECOVERY_CODE_USED = "recovery_code_used", _("Signed in with a recovery code")
        LOCKED_OUT = "locked_out", _("Sign-in locked after repeated failures")
        UNLOCKED = "unlocked", _("Sign-in lock lifted by an operator")
        SESSIONS_REVOKED = "sessions_revoked", _("Other sessions signed out")
        SETTINGS_CHANGED = "settings_changed", _("Settings changed")
        DATA_EXPORTED = "data_exported", _("Mail exported")
        PERSON_DELETED = "person_deleted", _("Account deleted")
        OPERATOR_ACTION = "operator_action", _("Operator action")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["user", "-at"], name="auditevent_user_at")]

    def __str__(self) -> str:
        return f"{self.kind} {self.user_id} {self.at:%Y-%m-%d %H:%M}"


class Theme(models.TextChoices):
    SYSTEM = "system", _("Same as the device")
    LIGHT = "light", _("Light")
    DARK = "dark", _("Dark")


class RemoteContent(models.TextChoices):
    BLOCK = "block", _("Block, and ask for each message")
    ALLOW = "allow", _("Always show")


class Profile(models.Model):
    """A person's own preferences, and whether their contact address was verified."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="profile"
    )
    display_name = models.CharField(_("display name"), max_length=200, blank=True)
    language = models.CharField(_("language"), max_length=16, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    theme = models.CharField(_("theme"), max_length=8, choices=Theme.choices, default=Theme.SYSTEM)
    messages_per_page = models.PositiveIntegerField(
        _("messages per page"), default=50, validators=[MinValueValidator(10), MaxValueValidator(200)]
    )
    undo_send_seconds = models.PositiveIntegerField(
        _("undo send delay (seconds)"), default=10, validators=[MaxValueValidator(60)]
    )
    remote_content = models.CharField(
        _("remote content in messages"),
        max_length=8,
        choices=RemoteContent.choices,
        default=RemoteContent.BLOCK,
    )
    desktop_notifications = models.BooleanField(_("desktop notifications for new mail"), default=False)
    email_verified_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user_id}"


class TrustedSender(models.Model):
    """A sender whose messages show remote content for this person ("Always show from this sender")."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trusted_senders"
    )
    email = models.CharField(max_length=320)  # lower-case
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "email"], name="trusted_sender_once")]
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class Invite(models.Model):
    """A sign-up link made by staff; only a hash of its token is stored, and it works once."""

    token_hash = models.CharField(max_length=64, unique=True)
    email = models.EmailField(_("for address (optional)"), blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="invites_made"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"invite {self.pk}"

    @property
    def usable(self) -> bool:
        return self.used_at is None and self.expires_at > timezone.now()


class SignInSession(models.Model):
    """A signed-in browser of a person: where and with what it signed in, for the sessions list.

    Keyed by its own id (kept in the session data), because Django changes the session key on
    sign-in and on password change; `session_key` follows it.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sign_ins")
    session_key = models.CharField(max_length=40, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen_at", "-id"]

    def __str__(self) -> str:
        return f"session {self.pk} of {self.user_id}"


class Limits(models.Model):
    """Quotas: one row per person who has their own, and one row with no person for everyone.

    A blank value falls back to the global row, then to the settings (see accounts.limits).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="limits"
    )
    max_accounts = models.PositiveIntegerField(_("mail accounts per person"), null=True, blank=True)
    max_cache_mb = models.PositiveIntegerField(_("cache storage (MB, 0 = unlimited)"), null=True, blank=True)
    max_sends_per_hour = models.PositiveIntegerField(_("messages sent per hour"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "limits"

    def __str__(self) -> str:
        return f"limits of {self.user_id or 'everyone'}"
