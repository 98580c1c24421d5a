"""Writing: start replies and forwards, save drafts (cache + Drafts folder), attachments, discard."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Identity
from webmail.compose.build import (
    AttachmentData,
    OutgoingDraft,
    build_message,
    forward_subject,
    guess_content_type,
    make_message_id,
    reply_subject,
)
from webmail.compose.forms import parse_recipients
from webmail.compose.models import Attachment, Kind, OutgoingMessage, State
from webmail.mail import blobs
from webmail.mail.actions.changes import do_append, do_expunge, special_folder
from webmail.mail.models import Message, MessageBody, SpecialUse
from webmail.mailcore import mime
from webmail.mailcore.addresses import Address, normalize_email, parse_address_list
from webmail.mailcore.html import html_to_text, sanitize_html

log = logging.getLogger(__name__)


class ComposeRefused(ValueError):
    """A change to a draft that cannot be made (too large, not a draft any more...)."""


@dataclass
class Initial:
    """What a new compose page starts with."""

    kind: str = Kind.NEW
    to: str = ""
    cc: str = ""
    subject: str = ""
    body_text: str = ""
    identity: Identity | None = None
    source: Message | None = None
    attachment_names: list[str] = field(default_factory=list)


def _fmt(items) -> str:  # type: ignore[no-untyped-def]
    return ", ".join(Address(n, e).formatted for n, e in items)


def _raw_of(message: Message) -> bytes:
    body = MessageBody.objects.filter(message=message).first()
    return blobs.unpack(body.raw_compressed) if body else b""


def _own_addresses(user: AbstractBaseUser) -> set[str]:
    own = set()
    for acc_email, id_email in Identity.objects.filter(account__user_id=user.pk).values_list(
        "account__email", "email"
    ):
        own.add(normalize_email(acc_email).lower())
        own.add(normalize_email(id_email).lower())
    return own


def pick_identity(user: AbstractBaseUser, message: Message | None) -> Identity | None:
    """Return the identity matching an address the message was sent to, else the account default."""
    from webmail.compose.access import identities_of

    identities = list(identities_of(user))
    if message is not None:
        addressed = {normalize_email(e).lower() for _n, e in [*message.to, *message.cc]}
        for identity in identities:
            if (
                identity.account_id == message.account_id
                and normalize_email(identity.email).lower() in addressed
            ):
                return identity
        for identity in identities:
            if identity.account_id == message.account_id and identity.is_default:
                return identity
    return next((i for i in identities if i.is_default), identities[0] if identities else None)


def _quote(text: str) -> str:
    return "\n".join(("> " + line) if line else ">" for line in text.rstrip("\n").split("\n"))


def _original_text(message: Message) -> str:
    text, html, _cids = mime.get_bodies(_raw_of(message))
    if text is None and html is not None:
        text = html_to_text(html)
    return (text or "").replace("\r\n", "\n")


def _when(message: Message) -> str:
    return timezone.localtime(message.date).strftime("%a, %d %b %Y %H:%M")


def initial_for(user: AbstractBaseUser, kind: str, message: Message | None) -> Initial:
    """Return the starting values for a new message of KIND about MESSAGE (None for a new one)."""
    identity = pick_identity(user, message)
    init = Initial(kind=kind, identity=identity, source=message)
    if message is None:
        return init
    sender = Address(message.from_name, message.from_email).formatted
    if kind in (Kind.REPLY, Kind.REPLY_ALL):
        reply_to = [tuple(x) for x in message.reply_to] or [(message.from_name, message.from_email)]
        own = _own_addresses(user)
        init.subject = reply_subject(message.subject)
        to = [(n, e) for n, e in reply_to]
        if kind == Kind.REPLY_ALL:
            seen = {normalize_email(e).lower() for _n, e in to}
            cc = []
            for n, e in [*map(tuple, message.to), *map(tuple, message.cc)]:
                key = normalize_email(e).lower()
                if key in seen or key in own:
                    continue
                seen.add(key)
                cc.append((n, e))
            # Replying to one's own sent message goes to its recipients, not to oneself.
            to = [x for x in to if normalize_email(x[1]).lower() not in own] or to
            init.cc = _fmt(cc)
        init.to = _fmt(to)
        init.body_text = f"\n\n{_('On %(when)s, %(who)s wrote:') % {'when': _when(message), 'who': sender}}\n"
        init.body_text += _quote(_original_text(message)) + "\n"
    elif kind == Kind.FORWARD:
        init.subject = forward_subject(message.subject)
        header = [
            "-------- " + _("Forwarded message") + " --------",
            _("From: %s") % sender,
            _("Date: %s") % _when(message),
            _("Subject: %s") % message.subject,
            _("To: %s") % _fmt(message.to),
        ]
        if message.cc:
            header.append(_("Cc: %s") % _fmt(message.cc))
        init.body_text = "\n\n" + "\n".join(header) + "\n\n" + _original_text(message)
        init.attachment_names = [a.filename for a in _source_attachments(message)]
    elif kind == Kind.FORWARD_ATTACHED:
        init.subject = forward_subject(message.subject)
        init.attachment_names = [_eml_name(message)]
    elif kind == Kind.DRAFT:
        init.subject = message.subject
        init.to = _fmt(message.to)
        init.cc = _fmt(message.cc)
        init.body_text = _original_text(message)
        init.attachment_names = [a.filename for a in _source_attachments(message)]
    if identity and identity.signature_text and kind != Kind.DRAFT:
        init.body_text = "\n\n-- \n" + identity.signature_text + init.body_text
    return init


def _eml_name(message: Message) -> str:
    name = mime.sanitize_filename(message.subject or "message", fallback="message")
    return (name[:80] or "message") + ".eml"


def _source_attachments(message: Message) -> list[AttachmentData]:
    raw = _raw_of(message)
    parsed = mime.parse_message(raw)
    out = []
    for info in parsed.attachments:
        if info.disposition != "attachment":
            continue
        try:
            ctype, filename, payload = mime.get_part(raw, info.part_id)
        except KeyError:
            continue
        out.append(AttachmentData(filename or info.filename, ctype, payload))
    return out


def _thread_ids(message: Message) -> tuple[str, list[str]]:
    refs = [r for r in message.references.split() if r]
    if message.in_reply_to and message.in_reply_to not in refs:
        refs.append(message.in_reply_to)
    if message.message_id:
        refs.append(message.message_id)
    # RFC 5322 3.6.4: References = the parent's References (or In-Reply-To) plus the parent's id.
    return message.message_id, refs[-50:]


@transaction.atomic
def do_create(
    user: AbstractBaseUser, identity: Identity, *, kind: str = Kind.NEW, source: Message | None = None
) -> OutgoingMessage:
    """Create a draft row for USER sending as IDENTITY, about SOURCE (already access-checked)."""
    domain = identity.email.rpartition("@")[2]
    outgoing = OutgoingMessage.objects.create(
        user_id=user.pk,
        account=identity.account,
        identity=identity,
        kind=kind or Kind.NEW,
        message_id=make_message_id(domain),
        source_message=source,
    )
    if source is not None:
        if kind in (Kind.REPLY, Kind.REPLY_ALL):
            parent, refs = _thread_ids(source)
            outgoing.in_reply_to = parent
            outgoing.references = " ".join(refs)
            outgoing.save(update_fields=["in_reply_to", "references"])
        elif kind == Kind.FORWARD or kind == Kind.DRAFT:
            for att in _source_attachments(source):
                _add(outgoing, att.filename, att.content_type, att.data)
            if kind == Kind.DRAFT:
                outgoing.draft_message = source
                outgoing.in_reply_to = source.in_reply_to
                outgoing.references = source.references
                outgoing.save(update_fields=["draft_message", "in_reply_to", "references"])
        elif kind == Kind.FORWARD_ATTACHED:
            _add(outgoing, _eml_name(source), "message/rfc822", _raw_of(source))
    return outgoing


def _add(outgoing: OutgoingMessage, filename: str, content_type: str, data: bytes) -> Attachment:
    return Attachment.objects.create(
        message=outgoing, filename=filename, content_type=content_type, size=len(data), data=data
    )


def total_attachment_bytes(outgoing: OutgoingMessage) -> int:
    return sum(outgoing.attachments.values_list("size", flat=True))


@transaction.atomic
def do_add_attachment(
    outgoing: OutgoingMessage, filename: str, content_type: str, data: bytes, *, per_file: int, total: int
) -> Attachment:
    """Attach a file to a draft; ComposeRefused when it is too large or the message is not a draft."""
    from django.template.defaultfilters import filesizeformat

    if OutgoingMessage.objects.select_for_update().filter(pk=outgoing.pk, state=State.DRAFT).count() != 1:
        raise ComposeRefused(_("This message is no longer a draft."))
    name = (filename or "attachment").replace("\r", "").replace("\n", "").replace("\x00", "").strip()
    name = name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1][:255] or "attachment"
    if len(data) > per_file:
        raise ComposeRefused(
            _("“%(name)s” is %(size)s; files can be at most %(max)s.")
            % {"name": name, "size": filesizeformat(len(data)), "max": filesizeformat(per_file)}
        )
    if total_attachment_bytes(outgoing) + len(data) > total:
        raise ComposeRefused(
            _("“%(name)s” would make the message larger than %(max)s.")
            % {"name": name, "max": filesizeformat(total)}
        )
    return _add(outgoing, name, guess_content_type(name, content_type), data)


@transaction.atomic
def do_remove_attachment(attachment: Attachment) -> None:
    """Remove an attachment from a draft."""
    if attachment.message.state != State.DRAFT:
        raise ComposeRefused(_("This message is no longer a draft."))
    attachment.delete()


def _addresses(value: str) -> tuple[Address, ...]:
    good, _errors = parse_recipients(value, "address")
    return good


def to_outgoing_draft(outgoing: OutgoingMessage, *, for_draft: bool = False) -> OutgoingDraft:
    """Return the build input for OUTGOING; drafts skip invalid addresses instead of refusing."""
    identity = outgoing.identity
    if identity is not None:
        from_ = Address(identity.display_name or outgoing.account.display_name, identity.email)
        reply_to = (Address("", identity.reply_to),) if identity.reply_to else ()
    else:
        from_ = Address(outgoing.account.display_name, outgoing.account.email)
        reply_to = ()
    html = None
    text = outgoing.body_text
    if outgoing.html_mode and outgoing.body_html.strip():
        html = sanitize_html(outgoing.body_html).html
        text = html_to_text(html)
    subject = outgoing.subject
    if for_draft:
        subject = subject.replace("\r", " ").replace("\n", " ").replace("\x00", "")
    attachments = []
    forwarded = None
    forwarded_name = "forwarded.eml"
    for att in outgoing.attachments.all():
        if att.content_type == "message/rfc822" and forwarded is None:
            forwarded, forwarded_name = bytes(att.data), att.filename
        else:
            attachments.append(AttachmentData(att.filename, att.content_type, bytes(att.data)))
    refs = tuple(r for r in outgoing.references.split() if r)
    return OutgoingDraft(
        from_=from_,
        to=_addresses(outgoing.to),
        cc=_addresses(outgoing.cc),
        bcc=_addresses(outgoing.bcc),
        reply_to=reply_to,
        subject=subject,
        text=text,
        html=html,
        attachments=tuple(attachments),
        forwarded=forwarded,
        forwarded_name=forwarded_name,
        message_id=outgoing.message_id,
        in_reply_to=outgoing.in_reply_to or None,
        references=refs,
        date=datetime.now(UTC).astimezone(),
        require_recipient=not for_draft,
    )


FIELDS = ("to", "cc", "bcc", "subject", "body_text", "body_html", "html_mode")


@transaction.atomic
def do_update_draft(
    outgoing: OutgoingMessage, identity: Identity, values: dict[str, object]
) -> OutgoingMessage:
    """Store what the person typed (VALUES with keys FIELDS) in the draft row."""
    locked = OutgoingMessage.objects.select_for_update().filter(pk=outgoing.pk).first()
    if locked is None or locked.state != State.DRAFT:
        raise ComposeRefused(_("This message is no longer a draft."))
    for name in FIELDS:
        if name in values:
            setattr(outgoing, name, values[name])
    if identity.account_id != outgoing.account_id:
        # Another account sends it now: the Drafts copy moves with it at the next save.
        outgoing.draft_message_id = locked.draft_message_id
        _drop_server_draft(outgoing)
        OutgoingMessage.objects.filter(pk=outgoing.pk).update(draft_message=None, draft_hash="")
        outgoing.account = identity.account
    outgoing.identity = identity
    # Named fields only: the caller's copy may be older than the Drafts bookkeeping.
    outgoing.save(update_fields=[*(n for n in FIELDS if n in values), "identity", "account", "updated_at"])
    return outgoing


def _drop_server_draft(outgoing: OutgoingMessage) -> None:
    if outgoing.draft_message_id:
        stale = list(Message.objects.filter(pk=outgoing.draft_message_id))
        if stale:
            do_expunge(stale)
        outgoing.draft_message = None
        outgoing.draft_hash = ""


@transaction.atomic
def do_store_draft(outgoing: OutgoingMessage) -> bool:
    """Put the current draft in the account's Drafts folder, replacing the previous copy.

    Return False when nothing changed since the last copy (no APPEND then) or there is no Drafts folder.
    The copy carries no Bcc header, like every copy; the row keeps Bcc for reopening.
    """
    outgoing = OutgoingMessage.objects.select_for_update().get(pk=outgoing.pk)
    if outgoing.state != State.DRAFT:
        return False
    drafts = special_folder(outgoing.account_id, SpecialUse.DRAFTS)
    if drafts is None:
        return False
    built = to_outgoing_draft(outgoing, for_draft=True)
    try:
        raw = build_message(built)
    except ValueError:
        log.info("draft %s cannot be built yet", outgoing.pk, exc_info=True)
        return False
    # Date and MIME boundaries change with every build: hash what the person wrote instead.
    parts = [str(getattr(outgoing, name)) for name in FIELDS] + [str(outgoing.identity_id)]
    parts += [f"{a.pk}:{a.size}" for a in outgoing.attachments.all()]
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    if digest == outgoing.draft_hash and outgoing.draft_message_id:
        return False
    _drop_server_draft(outgoing)
    row = do_append(drafts, raw, flags=["\\Draft", "\\Seen"], date=timezone.now())
    OutgoingMessage.objects.filter(pk=outgoing.pk).update(draft_message=row, draft_hash=digest)
    return True


@transaction.atomic
def do_discard(outgoing: OutgoingMessage) -> None:
    """Delete a draft (and its Drafts copy); messages in the outbox cannot be discarded."""
    outgoing = OutgoingMessage.objects.select_for_update().get(pk=outgoing.pk)
    if outgoing.state not in (State.DRAFT, State.FAILED):
        raise ComposeRefused(_("This message is being sent; undo or wait."))
    if outgoing.state == State.DRAFT:
        _drop_server_draft(outgoing)
    outgoing.delete()


def initial_addresses(value: str) -> tuple[Address, ...]:
    return parse_address_list(value)
