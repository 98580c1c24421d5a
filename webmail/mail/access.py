"""The only way to load a person's folders, messages and threads: missing and not-yours are the same 404."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404

from webmail.mail.models import Folder, Message, Thread
from webmail.mail.prepared import PreparedQuery

# More ids than this in one request is not a person clicking: refuse rather than load them all.
MAX_IDS = 1000
MAX_ID = 2**63 - 1  # the largest id a database column holds (a larger one is a missing object)


def _as_id(value: object) -> int:
    """Return VALUE as a positive database id, or raise Http404 (a garbled URL is a missing object)."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise Http404("No such object")
    if not 1 <= number <= MAX_ID:
        raise Http404("No such object")
    return number


# Every page loads its folder or message by id: compiled once (webmail/mail/prepared.py).
_folder_by_id: PreparedQuery[Folder] = PreparedQuery(
    lambda pk: Folder.objects.select_related("account").filter(pk=pk)[:1]
)
_message_by_id: PreparedQuery[Message] = PreparedQuery(
    lambda pk: Message.objects.select_related("folder", "account").filter(pk=pk)[:1]
)


def access_folder(user: AbstractBaseUser, folder_id: object) -> Folder:
    """Return USER's folder FOLDER_ID (with its account), or raise Http404."""
    found = _folder_by_id(_as_id(folder_id))
    if not found or found[0].account.user_id != user.pk:
        raise Http404("No such folder")
    return found[0]


def access_message(user: AbstractBaseUser, message_id: object) -> Message:
    """Return USER's message MESSAGE_ID (with its folder and account), or raise Http404."""
    found = _message_by_id(_as_id(message_id))
    if not found or found[0].account.user_id != user.pk:
        raise Http404("No such message")
    return found[0]


def access_messages(user: AbstractBaseUser, message_ids: Iterable[object]) -> list[Message]:
    """Return USER's messages MESSAGE_IDS in id order; raise Http404 unless every one is theirs."""
    ids = sorted({_as_id(i) for i in message_ids})
    if not ids:
        raise Http404("No messages")
    if len(ids) > MAX_IDS:
        raise Http404("Too many messages")
    messages = list(
        Message.objects.select_related("folder", "account")
        .filter(pk__in=ids, account__user_id=user.pk)
        .order_by("pk")
    )
    if len(messages) != len(ids):
        raise Http404("No such message")
    return messages


def access_thread(user: AbstractBaseUser, thread_id: object) -> Thread:
    """Return USER's thread THREAD_ID (with its account), or raise Http404."""
    thread = Thread.objects.select_related("account").filter(pk=_as_id(thread_id)).first()
    if thread is None:
        raise Http404("No such conversation")
    if thread.account.user_id != user.pk:
        raise Http404("No such conversation")
    return thread
