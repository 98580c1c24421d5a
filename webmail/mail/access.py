"""The only way to load a person's folders, messages and threads: missing and not-yours are the same 404."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404

from webmail.mail.models import Folder, Message, Thread

# More ids than this in one request is not a person clicking: refuse rather than load them all.
MAX_IDS = 1000


def _as_id(value: object) -> int:
    """Return VALUE as a positive database id, or raise Http404 (a garbled URL is a missing object)."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise Http404("No such object")
    if number < 1:
        raise Http404("No such object")
    return number


def access_folder(user: AbstractBaseUser, folder_id: object) -> Folder:
    """Return USER's folder FOLDER_ID (with its account), or raise Http404."""
    folder = Folder.objects.select_related("account").filter(pk=_as_id(folder_id)).first()
    if folder is None:
        raise Http404("No such folder")
    if folder.account.user_id != user.pk:
        raise Http404("No such folder")
    return folder


def access_message(user: AbstractBaseUser, message_id: object) -> Message:
    """Return USER's message MESSAGE_ID (with its folder and account), or raise Http404."""
    message = Message.objects.select_related("folder", "account").filter(pk=_as_id(message_id)).first()
    if message is None:
        raise Http404("No such message")
    if message.account.user_id != user.pk:
        raise Http404("No such message")
    return message


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
