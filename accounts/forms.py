"""Forms for signing up and for adding and editing mail accounts."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.models import MailAccount, Security

# RFC 1123 host names (IDN allowed: encoded below) or IPv4/IPv6 literals; no scheme, path or port.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_host(value: str) -> str:
    """Return VALUE as a plain host name or IP literal, or raise ValidationError explaining why not."""
    host = value.strip().rstrip(".")
    if not host:
        raise ValidationError(_("Enter the server's host name."))
    if _CONTROL.search(host) or " " in host:
        raise ValidationError(_("A host name cannot contain spaces or control characters."))
    if "://" in host or "/" in host:
        raise ValidationError(
            _("Enter only the host name (like imap.example.com), without a scheme or path.")
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        import ipaddress

        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValidationError(_("Enter the port in its own field, not after the host name."))
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationError(_("%(host)s is not a valid host name."), params={"host": host})
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in ascii_host.split(".")):
        raise ValidationError(_("%(host)s is not a valid host name."), params={"host": host})
    return ascii_host.lower()


class SignupForm(UserCreationForm):
    """Create a person: a user name, an optional contact address and a password."""

    email = forms.EmailField(
        label=_("Contact email (optional)"),
        required=False,
        help_text=_("Used only to reset your password."),
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")


class MailAccountForm(forms.ModelForm):
    """Add or edit a mail account. Blank password fields on edit keep the stored passwords."""

    incoming_password = forms.CharField(
        label=_("Incoming password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    smtp_password = forms.CharField(
        label=_("Outgoing password"),
        required=False,
        strip=False,
        help_text=_("Leave blank to use the incoming password."),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = MailAccount
        fields = [
            "name",
            "email",
            "display_name",
            "incoming_protocol",
            "incoming_host",
            "incoming_port",
            "incoming_security",
            "incoming_username",
            "pop3_leave_on_server",
            "pop3_delete_after_days",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_username",
        ]
        widgets = {
            "incoming_port": forms.NumberInput(attrs={"min": 1, "max": 65535}),
            "smtp_port": forms.NumberInput(attrs={"min": 1, "max": 65535}),
        }
        help_texts = {
            "name": _("Shown in the folder list, e.g. Work or Personal."),
            "incoming_username": _("Usually your full email address."),
            "smtp_username": _("Leave blank to use the incoming user name."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.fields["incoming_password"].required = True
        else:
            self.fields["incoming_password"].help_text = _("Leave blank to keep the saved password.")
        for name, field in self.fields.items():
            if name.endswith("_port"):
                field.error_messages["invalid"] = _("Enter a port number from 1 to 65535.")
                field.error_messages["min_value"] = _("Enter a port number from 1 to 65535.")
                field.error_messages["max_value"] = _("Enter a port number from 1 to 65535.")

    def clean_incoming_host(self) -> str:
        return clean_host(self.cleaned_data.get("incoming_host", ""))

    def clean_smtp_host(self) -> str:
        return clean_host(self.cleaned_data.get("smtp_host", ""))

    def clean_name(self) -> str:
        name = self.cleaned_data.get("name", "").strip()
        if _CONTROL.search(name):
            raise ValidationError(_("The name cannot contain control characters."))
        return name

    def clean_display_name(self) -> str:
        name = self.cleaned_data.get("display_name", "").strip()
        if _CONTROL.search(name):
            raise ValidationError(_("Your name cannot contain line breaks or control characters."))
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for prefix in ("incoming", "smtp"):
            if data.get(f"{prefix}_security") == Security.TLS and data.get(f"{prefix}_port") in (
                143,
                110,
                587,
                25,
            ):
                self.add_error(
                    f"{prefix}_port",
                    _("Port %(port)s is normally used with STARTTLS, not SSL/TLS.")
                    % {"port": data[f"{prefix}_port"]},
                )
        return data

    def save(self, commit: bool = True) -> MailAccount:
        account = super().save(commit=False)
        if self.cleaned_data.get("incoming_password"):
            account.set_incoming_password(self.cleaned_data["incoming_password"])
        if self.cleaned_data.get("smtp_password"):
            account.set_smtp_password(self.cleaned_data["smtp_password"])
        if not account.smtp_username:
            account.smtp_username = account.incoming_username
        if commit:
            account.save()
        return account


class PresetLookupForm(forms.Form):
    """The email address to suggest server settings for."""

    email = forms.EmailField(label=_("Email address"))


class CodeForm(forms.Form):
    """The code of the second sign-in step, or of setting up an authenticator app."""

    code = forms.CharField(
        label=_("Authentication code"),
        max_length=32,
        help_text=_("The 6-digit code from your authenticator app, or one of your recovery codes."),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autocapitalize": "off"}
        ),
    )

    def clean_code(self) -> str:
        return "".join(self.cleaned_data["code"].split())


class PasswordConfirmForm(forms.Form):
    """Ask for the person's password again before a sensitive change."""

    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, user: Any, *args: Any, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError(_("That is not your password."))
        return password


class DeleteAccountForm(PasswordConfirmForm):
    """Confirm deleting everything: the password and the word DELETE."""

    confirm = forms.CharField(
        label=_("Type DELETE to confirm"),
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"].strip()
        if value != "DELETE":
            raise ValidationError(_("Type DELETE in capital letters."))
        return value


def _time_zone_choices() -> list[tuple[str, str]]:
    import zoneinfo

    return [("", _("The server's time zone"))] + [
        (name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())
    ]


class ProfileForm(forms.ModelForm):
    """A person's own settings."""

    class Meta:
        from accounts.models import Profile

        model = Profile
        fields = [
            "display_name",
            "language",
            "time_zone",
            "theme",
            "messages_per_page",
            "undo_send_seconds",
            "remote_content",
            "desktop_notifications",
        ]
        help_texts = {
            "display_name": _("Shown at the top of the page; senders' names come from each identity."),
            "undo_send_seconds": _("How long Send waits so you can take a message back (0 to 60)."),
            "desktop_notifications": _("Your browser asks for permission the first time."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from django.conf import settings

        super().__init__(*args, **kwargs)
        self.fields["language"] = forms.ChoiceField(
            label=_("Language"),
            required=False,
            choices=[("", _("Same as the browser"))] + list(settings.LANGUAGES),
        )
        self.fields["time_zone"] = forms.ChoiceField(
            label=_("Time zone"), required=False, choices=_time_zone_choices()
        )
        self.fields["messages_per_page"].widget = forms.NumberInput(attrs={"min": 10, "max": 200})
        self.fields["undo_send_seconds"].widget = forms.NumberInput(attrs={"min": 0, "max": 60})

    def clean_display_name(self) -> str:
        name = self.cleaned_data.get("display_name", "").strip()
        if _CONTROL.search(name):
            raise ValidationError(_("Your name cannot contain line breaks or control characters."))
        return name


class VerifiedSignupForm(SignupForm):
    """Open sign-up with email verification: the address is required and must be new here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True
        self.fields["email"].label = _("Email address")
        self.fields["email"].help_text = _("We send a link there; open it to finish signing up.")
