"""Build stored objects for tests."""

from __future__ import annotations

from accounts.models import Identity, MailAccount


def make_account(user, *, password: str = "pw", smtp_password: str = "", **fields) -> MailAccount:
    """Create a mail account for USER with sensible defaults, overridden by FIELDS."""
    values = dict(
        name="Work",
        email=f"{user.username}@example.test",
        incoming_host="imap.example.test",
        incoming_port=993,
        incoming_security="tls",
        incoming_username=f"{user.username}@example.test",
        smtp_host="smtp.example.test",
        smtp_port=587,
        smtp_security="starttls",
        smtp_username=f"{user.username}@example.test",
    )
    values.update(fields)
    account = MailAccount(user=user, **values)
    account.set_incoming_password(password)
    if smtp_password:
        account.set_smtp_password(smtp_password)
    account.save()
    Identity.objects.create(account=account, email=account.email, is_default=True)
    return account
