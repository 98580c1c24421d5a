"""Seed alice@ and bob@example.test with realistic mail for demos and manual testing."""

from __future__ import annotations

import random
import struct
import zlib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from tests.mailstack.stack import MailStack, MailUser

ALICE = MailUser("alice@example.test", "alice")
BOB = MailUser("bob@example.test", "bob")
SEED_USERS = (ALICE, BOB)

NAMES = {ALICE.address: "Alice Martin", BOB.address: "Bob Okafor"}
EXTRA_FOLDERS = ("Projects", "Projects/Garden", "Receipts")


def _png() -> bytes:
    """Return a valid 8x8 PNG (a small orange square) built with zlib only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x80\x00" * 8 for _ in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def _addr(address: str) -> str:
    name = NAMES.get(address)
    return f"{name} <{address}>" if name else address


class _Mail:
    """One message and where it goes: (user, folder, flags) placements."""

    def __init__(self, msg: EmailMessage, when: datetime) -> None:
        self.msg, self.when = msg, when
        self.places: list[tuple[MailUser, str, tuple[bytes, ...]]] = []


def _message(
    sender: str,
    to: list[str],
    subject: str,
    text: str,
    when: datetime,
    *,
    html: str | None = None,
    reply_to: EmailMessage | None = None,
    cc: list[str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = _addr(sender)
    msg["To"] = ", ".join(_addr(a) for a in to)
    if cc:
        msg["Cc"] = ", ".join(_addr(a) for a in cc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    if reply_to is not None:
        # RFC 5322 3.6.4: In-Reply-To is the parent, References the whole chain.
        parent_id = reply_to["Message-ID"]
        msg["In-Reply-To"] = parent_id
        msg["References"] = " ".join(filter(None, [reply_to.get("References"), parent_id]))
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def build_corpus(now: datetime | None = None) -> list[_Mail]:
    """Return the seeded messages with their placements, newest last."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    rnd = random.Random(42)
    a, b = ALICE.address, BOB.address
    mails: list[_Mail] = []

    def add(msg: EmailMessage, when: datetime, *places: tuple[MailUser, str, tuple[bytes, ...]]) -> None:
        m = _Mail(msg, when)
        m.places.extend(places)
        mails.append(m)

    seen, answered, flagged = b"\\Seen", b"\\Answered", b"\\Flagged"

    # A three-message thread between alice and bob.
    t0 = now - timedelta(days=3, hours=5)
    m1 = _message(
        a, [b], "Lunch on Friday?", "Hi Bob,\n\nFancy lunch on Friday at the Thai place?\n\nAlice\n", t0
    )
    add(m1, t0, (ALICE, "Sent", (seen,)), (BOB, "INBOX", (seen, answered)))
    t1 = t0 + timedelta(hours=2)
    quote = "Sounds good! 12:30?\n\n> Fancy lunch on Friday at the Thai place?\n"
    m2 = _message(b, [a], "Re: Lunch on Friday?", quote, t1, reply_to=m1)
    add(m2, t1, (BOB, "Sent", (seen,)), (ALICE, "INBOX", (seen, answered)))
    t2 = t1 + timedelta(minutes=40)
    m3 = _message(a, [b], "Re: Lunch on Friday?", "12:30 it is. I'll book a table.\n", t2, reply_to=m2)
    add(m3, t2, (ALICE, "Sent", (seen,)), (BOB, "INBOX", ()))

    # HTML newsletter with a remote image and a tracking pixel (remote content must stay blocked).
    t = now - timedelta(days=1, hours=3)
    news = _message(
        "news@shop.example.net",
        [a],
        "Your weekly picks 🌱 – spring sale",
        "Spring sale: 20% off seeds and tools this week.\nhttps://shop.example.net/sale\n",
        t,
        html=(
            "<html><body style='font-family:sans-serif'>"
            "<h1 style='color:#2a7'>Spring sale</h1>"
            "<p>20% off <b>seeds</b> and <i>tools</i> this week.</p>"
            "<img src='https://shop.example.net/banner.jpg' alt='banner'>"
            "<p><a href='https://shop.example.net/sale'>Shop now</a></p>"
            "<img src='https://track.example.net/open.gif?u=alice' width='1' height='1'>"
            "</body></html>"
        ),
    )
    news["List-Unsubscribe"] = "<https://shop.example.net/unsubscribe?u=alice>"
    add(news, t, (ALICE, "INBOX", ()))

    # Attachments: a PDF, an image and a text file with a non-ASCII name.
    t = now - timedelta(hours=20)
    att = _message(
        b, [a], "Garden plan and photos", "Hi Alice,\n\nAttached: the plan, a photo and my notes.\n", t
    )
    att.add_attachment(_pdf(), maintype="application", subtype="pdf", filename="garden-plan.pdf")
    att.add_attachment(_png(), maintype="image", subtype="png", filename="beet.png")
    att.add_attachment("Tomaten, Möhren, Rüben\n", filename="Überblick.txt")
    add(att, t, (ALICE, "Projects/Garden", (seen, flagged)), (BOB, "Sent", (seen,)))

    # Non-ASCII headers and bodies in several scripts.
    t = now - timedelta(hours=6)
    intl = _message(
        "jose.nunez@correo.example.org",
        [a],
        "Grüße aus München – ¿nos vemos?",
        "Hola Alice,\n\nSaludos desde München. Ça va? Привет! 会議の議事録を添付します。\n\nJosé\n",
        t,
    )
    intl.replace_header("From", "José Núñez <jose.nunez@correo.example.org>")
    add(intl, t, (ALICE, "INBOX", ()))
    t = now - timedelta(hours=4)
    jp = _message(
        "tanaka@example.jp",
        [b],
        "会議の議事録",
        "ボブさん\n\n本日の会議の議事録です。\nよろしくお願いします。\n田中\n",
        t,
    )
    add(jp, t, (BOB, "INBOX", ()))

    # Cc'd mail for both, a draft, junk, trash and a receipt.
    t = now - timedelta(days=2)
    cc = _message("carol@example.org", [a], "Board game night", "Saturday, 7pm, bring snacks.\n", t, cc=[b])
    add(cc, t, (ALICE, "INBOX", (seen,)), (BOB, "INBOX", (seen,)))
    t = now - timedelta(hours=1)
    draft = _message(
        a, ["carol@example.org"], "Re: Board game night", "I'll bring crisps and", t, reply_to=cc
    )
    add(draft, t, (ALICE, "Drafts", (seen, b"\\Draft")))
    t = now - timedelta(days=5)
    spam = _message("winner@lottery.example.com", [a], "You have WON $1,000,000!!!", "Click to claim.\n", t)
    add(spam, t, (ALICE, "Junk", ()))
    t = now - timedelta(days=6)
    old = _message("noreply@example.com", [a], "Your password was changed", "If this was you, ignore.\n", t)
    add(old, t, (ALICE, "Trash", (seen,)))
    t = now - timedelta(days=9)
    rec = _message("billing@shop.example.net", [a], "Receipt #10423", "Total: 42.00 EUR\n", t)
    add(rec, t, (ALICE, "Receipts", (seen,)), (ALICE, "Archive", (seen,)))

    # Filler mail over six weeks so lists have pages and dates have groups.
    senders = ["dana@example.org", "eve@example.net", "frank@example.com", "news@club.example.org"]
    topics = ["Minutes", "Invoice", "Weekend plans", "Photos", "Question about the report", "Reminder"]
    for i in range(40):
        user = ALICE if i % 3 else BOB
        t = now - timedelta(days=7 + i, hours=rnd.randint(0, 23), minutes=rnd.randint(0, 59))
        sender = rnd.choice(senders)
        body = (
            f"Message {i + 1}.\n\n"
            + "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" * rnd.randint(1, 8)
        )
        msg = _message(sender, [user.address], f"{rnd.choice(topics)} ({i + 1})", body, t)
        flags = (seen,) if rnd.random() < 0.8 else ()
        add(msg, t, (user, "INBOX" if i % 5 else "Archive", flags))
    mails.sort(key=lambda m: m.when)
    return mails


def seed(stack: MailStack) -> tuple[MailUser, ...]:
    """Create alice and bob and append the corpus (idempotent per state directory)."""
    marker = stack.dir / "seeded"
    for user in SEED_USERS:
        stack.add_user(user.address, user.password)
    if marker.exists():
        return SEED_USERS
    mails = build_corpus()
    for user in SEED_USERS:
        with stack.imap_client(user) as client:
            for folder in EXTRA_FOLDERS:
                if not client.folder_exists(folder):
                    client.create_folder(folder)
                    client.subscribe_folder(folder)
            for mail in mails:
                raw = mail.msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                for who, folder, flags in mail.places:
                    if who == user:
                        client.append(folder, raw, flags=flags, msg_time=mail.when)
    marker.write_text("alice@example.test bob@example.test\n")
    return SEED_USERS
