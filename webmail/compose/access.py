"""The only way to load a person's outgoing messages, attachments and identities: missing and not-yours are one 404."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from accounts.models import Identity
from webmail.compose.models import Attachment, OutgoingMessage


def _as_id(value: object) -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise Http404("No such object")
    if number < 1:
        raise Http404("No such object")
    return number


def access_outgoing(user: AbstractBaseUser, outgoing_id: object) -> OutgoingMessage:
    """Return USER's outgoing message OUTGOING_ID (with account and identity), or raise Http404."""
    outgoing = (
        OutgoingMessage.objects.select_related("account", "identity").filter(pk=_as_id(outgoing_id)).first()
    )
    if outgoing is None:
        raise Http404("No such message")
    if outgoing.user_id != user.pk:
        raise Http404("No such message")
    if outgoing.account.user_id != user.pk:
        raise Http404("No such message")
    return outgoing


def access_attachment(user: AbstractBaseUser, outgoing_id: object, attachment_id: object) -> Attachment:
    """Return attachment ATTACHMENT_ID of USER's outgoing message OUTGOING_ID, or raise Http404."""
    outgoing = access_outgoing(user, outgoing_id)
    attachment = Attachment.objects.filter(pk=_as_id(attachment_id), message=outgoing).first()
    if attachment is None:
        raise Http404("No such attachment")
    return attachment


def identities_of(user: AbstractBaseUser) -> QuerySet[Identity]:
    """Return the From identities USER may send as (those of their own mail accounts)."""
    return (
        Identity.objects.filter(account__user_id=user.pk)
        .select_related("account")
        .order_by("account__name", "account_id", "-is_default", "email", "id")
    )


def access_identity(user: AbstractBaseUser, identity_id: object) -> Identity:
    """Return USER's identity IDENTITY_ID, or raise Http404."""
    identity = identities_of(user).filter(pk=_as_id(identity_id)).first()
    if identity is None:
        raise Http404("No such identity")
    return identity
