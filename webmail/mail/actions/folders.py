"""Changes to folder settings that live only in the cache."""

from __future__ import annotations

from django.db import transaction

from webmail.mail.models import Folder, SpecialUse


@transaction.atomic
def do_set_notify(folder: Folder, on: bool) -> None:
    """Mark FOLDER for (or clear it of) immediate push; the Inbox is always watched.

    Watchers pick the change up at their next balance (within about 10 s).
    """
    if folder.special_use == SpecialUse.INBOX or folder.is_local:
        return
    folder.notify = on
    folder.save(update_fields=["notify"])
