"""The compose form: recipients validated one by one, header injection refused, send-later time."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Identity
from webmail.compose.build import HeaderInjection, check_header_value
from webmail.compose.models import Kind
from webmail.mailcore.addresses import Address, validate_address

MAX_RECIPIENTS = 500


def split_addresses(value: str) -> list[str]:
    """Split a typed address list at commas and semicolons outside quotes and angle brackets."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    depth = 0
    for ch in value or "":
        if escaped:
            current.append(ch)
            escaped = False
            continue
        if ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            depth += 1
        elif ch == ">" and not quoted and depth:
            depth -= 1
        elif ch in ",;" and not quoted and not depth:
            items.append("".join(current))
            current = []
            continue
        current.append(ch)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def parse_recipients(value: str, field_name: str) -> tuple[tuple[Address, ...], list[str]]:
    """Return (valid addresses, error messages) for a typed To/Cc/Bcc value."""
    try:
        check_header_value(field_name, value)
    except HeaderInjection as exc:
        return (), [str(exc)]
    good: list[Address] = []
    errors: list[str] = []
    for item in split_addresses(value):
        try:
            good.append(validate_address(item))
        except ValueError as exc:
            errors.append(str(exc))
    if len(good) > MAX_RECIPIENTS:
        errors.append(str(_("At most %(n)d addresses per field.") % {"n": MAX_RECIPIENTS}))
    return tuple(good), errors


class IdentityChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Identity) -> str:  # type: ignore[override]
        who = f"{obj.display_name} <{obj.email}>" if obj.display_name else obj.email
        return f"{who} — {obj.account.name}"


class ComposeForm(forms.Form):
    """What the compose page posts; addresses come out of clean() as tuples of Address."""

    draft = forms.IntegerField(required=False, widget=forms.HiddenInput)
    source = forms.IntegerField(required=False, widget=forms.HiddenInput)
    kind = forms.ChoiceField(choices=Kind.choices, required=False, widget=forms.HiddenInput)
    identity = IdentityChoiceField(queryset=Identity.objects.none(), label=_("From"), empty_label=None)
    to = forms.CharField(label=_("To"), required=False, max_length=100_000)
    cc = forms.CharField(label=_("Cc"), required=False, max_length=100_000)
    bcc = forms.CharField(label=_("Bcc"), required=False, max_length=100_000)
    subject = forms.CharField(label=_("Subject"), required=False, max_length=998, strip=False)
    html_mode = forms.BooleanField(label=_("Rich text"), required=False)
    body_text = forms.CharField(label=_("Message"), required=False, widget=forms.Textarea, strip=False)
    body_html = forms.CharField(label=_("Message (rich text)"), required=False, widget=forms.HiddenInput)
    send_at = forms.DateTimeField(
        label=_("Send later at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    files = forms.FileField(label=_("Attach files"), required=False)

    def __init__(self, *args, user, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        from webmail.compose.access import identities_of

        self.fields["identity"].queryset = identities_of(user)
        self.fields["files"].widget.attrs.update({"multiple": True})
        for name in ("to", "cc", "bcc"):
            self.fields[name].widget.attrs.update(
                {"autocomplete": "off", "spellcheck": "false", "class": "address-input"}
            )
        self.fields["body_text"].widget.attrs.update({"rows": 16})
        self.addresses: dict[str, tuple[Address, ...]] = {"to": (), "cc": (), "bcc": ()}

    def clean_subject(self) -> str:
        value = self.cleaned_data.get("subject") or ""
        try:
            return check_header_value(str(_("Subject")), value).strip()
        except HeaderInjection as exc:
            raise forms.ValidationError(str(exc))

    def clean(self) -> dict:
        data = super().clean()
        for name in ("to", "cc", "bcc"):
            good, errors = parse_recipients(data.get(name) or "", name.capitalize())
            self.addresses[name] = good
            for error in errors:
                self.add_error(name, error)
        return data

    def check_for_sending(self) -> bool:
        """Add the errors that only matter when sending (no recipient, a time in the past)."""
        if not self.is_valid():
            return False
        if not (self.addresses["to"] or self.addresses["cc"] or self.addresses["bcc"]):
            self.add_error("to", _("Add at least one recipient in To (or in Bcc)."))
        send_at = self.cleaned_data.get("send_at")
        if send_at is not None and send_at < timezone.now() - timedelta(minutes=1):
            self.add_error("send_at", _("Pick a time in the future."))
        return not self.errors


def max_attachment_bytes() -> int:
    return settings.WEBMAIL_MAX_ATTACHMENT_BYTES


def max_message_bytes() -> int:
    return settings.WEBMAIL_MAX_MESSAGE_BYTES
