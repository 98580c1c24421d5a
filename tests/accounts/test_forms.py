"""Bad account settings give field errors, never a crash."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.forms import MailAccountForm, clean_host

GOOD = {
    "name": "Work",
    "email": "alice@example.test",
    "display_name": "Alice Example",
    "incoming_protocol": "imap",
    "incoming_host": "imap.example.test",
    "incoming_port": "993",
    "incoming_security": "tls",
    "incoming_username": "alice@example.test",
    "incoming_password": "pw",
    "pop3_leave_on_server": "keep",
    "pop3_delete_after_days": "14",
    "smtp_host": "smtp.example.test",
    "smtp_port": "587",
    "smtp_security": "starttls",
    "smtp_username": "",
    "smtp_password": "",
}


def form_with(**changes: str) -> MailAccountForm:
    return MailAccountForm({**GOOD, **changes})


def test_good_settings_are_valid_and_smtp_user_defaults_to_incoming():
    form = form_with()
    assert form.is_valid(), form.errors
    account = form.save(commit=False)
    assert account.smtp_username == "alice@example.test"
    assert account.get_incoming_password() == "pw"
    assert account.get_smtp_password() == "pw"


@pytest.mark.parametrize("port", ["0", "65536", "-1", "abc", "", "99999999999999999999"])
def test_bad_ports_are_field_errors(port):
    form = form_with(incoming_port=port)
    assert not form.is_valid()
    assert "incoming_port" in form.errors


@pytest.mark.parametrize(
    "host",
    [
        "",
        "   ",
        "imap://example.test",
        "example.test/path",
        "exa mple.test",
        "bad_host!.test",
        "example.test:993",
        "-lead.example.test",
        "a" * 64 + ".test",
        "line\nbreak.test",
    ],
)
def test_bad_hosts_are_field_errors(host):
    form = form_with(smtp_host=host)
    assert not form.is_valid()
    assert "smtp_host" in form.errors


@pytest.mark.parametrize(
    "field", ["name", "email", "incoming_host", "incoming_username", "incoming_password", "smtp_host"]
)
def test_empty_required_fields_are_field_errors(field):
    form = form_with(**{field: ""})
    assert not form.is_valid()
    assert field in form.errors


def test_implicit_tls_on_a_starttls_port_is_explained():
    form = form_with(incoming_port="143", incoming_security="tls")
    assert not form.is_valid()
    assert "STARTTLS" in str(form.errors["incoming_port"])


def test_display_name_with_line_break_is_refused():
    form = form_with(display_name="Alice\r\nBcc: victim@example.test")
    assert not form.is_valid()
    assert "display_name" in form.errors


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("IMAP.Example.TEST.", "imap.example.test"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("[::1]", "::1"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_hosts_are_normalised(raw, clean):
    assert clean_host(raw) == clean


def test_clean_host_rejects_scheme():
    with pytest.raises(ValidationError):
        clean_host("https://mail.example.test")
