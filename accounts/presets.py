"""Server settings for common providers, found from the domain of an email address."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """Suggested server settings; user names are the full address unless noted."""

    provider: str
    incoming_protocol: str
    incoming_host: str
    incoming_port: int
    incoming_security: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    note: str = ""


def _imap(provider: str, imap: str, smtp: str, smtp_port: int = 587, note: str = "") -> Preset:
    security = "starttls" if smtp_port == 587 else "tls"
    return Preset(provider, "imap", imap, 993, "tls", smtp, smtp_port, security, note)


APP_PASSWORD = "This provider needs an app password (or OAuth, which this webmail does not use yet)."

PRESETS: dict[str, Preset] = {}
for domains, preset in [
    (("gmail.com", "googlemail.com"), _imap("Gmail", "imap.gmail.com", "smtp.gmail.com", note=APP_PASSWORD)),
    (
        ("outlook.com", "hotmail.com", "live.com", "msn.com"),
        _imap("Outlook.com", "outlook.office365.com", "smtp-mail.outlook.com", note=APP_PASSWORD),
    ),
    (
        ("yahoo.com", "ymail.com", "rocketmail.com"),
        _imap("Yahoo Mail", "imap.mail.yahoo.com", "smtp.mail.yahoo.com", 465, note=APP_PASSWORD),
    ),
    (("icloud.com", "me.com", "mac.com"), _imap("iCloud Mail", "imap.mail.me.com", "smtp.mail.me.com")),
    (("fastmail.com", "fastmail.fm"), _imap("Fastmail", "imap.fastmail.com", "smtp.fastmail.com", 465)),
    (("posteo.de", "posteo.net"), _imap("Posteo", "posteo.de", "posteo.de")),
    (("mailbox.org",), _imap("mailbox.org", "imap.mailbox.org", "smtp.mailbox.org", 465)),
    (("gmx.de", "gmx.net", "gmx.com"), _imap("GMX", "imap.gmx.net", "mail.gmx.net")),
    (("web.de",), _imap("WEB.DE", "imap.web.de", "smtp.web.de")),
    (("zoho.com",), _imap("Zoho Mail", "imap.zoho.com", "smtp.zoho.com", 465)),
    (("aol.com",), _imap("AOL Mail", "imap.aol.com", "smtp.aol.com", 465, note=APP_PASSWORD)),
    (("yandex.com", "yandex.ru"), _imap("Yandex Mail", "imap.yandex.com", "smtp.yandex.com", 465)),
]:
    for domain in domains:
        PRESETS[domain] = preset


def preset_for(email: str) -> Preset | None:
    """Return the preset for EMAIL's domain, or a conventional guess (imap./smtp.) for others."""
    domain = email.rpartition("@")[2].strip().lower().rstrip(".")
    if not domain or "." not in domain:
        return None
    if domain in PRESETS:
        return PRESETS[domain]
    return _imap(
        "", f"imap.{domain}", f"smtp.{domain}", note="Guessed from the domain: check with your provider."
    )
