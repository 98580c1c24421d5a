"""The local mail cache: folders, messages, their raw bytes and searchable text, and threads.

IMAP and POP3 fill the same tables; POP3 mail lives in local folders (Folder.is_local).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import MailAccount


class SpecialUse(models.TextChoices):
    NONE = "", _("Folder")
    INBOX = "inbox", _("Inbox")
    DRAFTS = "drafts", _("Drafts")
    SENT = "sent", _("Sent")
    TRASH = "trash", _("Trash")
    JUNK = "junk", _("Junk")
    ARCHIVE = "archive", _("Archive")
    ALL = "all", _("All mail")
    FLAGGED = "flagged", _("Flagged")


class FolderNaming:
    """How a folder is named in the tree and menus, from its name, delimiter and special use (shared
    by the model and the folder tree's plain rows)."""

    __slots__ = ()
    name: str
    delimiter: str
    special_use: str

    @property
    def display_name(self) -> str:
        """Return the last path component (the whole name when there is no delimiter)."""
        if self.special_use == SpecialUse.INBOX:
            return str(_("Inbox"))
        return self.name.rsplit(self.delimiter, 1)[-1] if self.delimiter else self.name

    @property
    def depth(self) -> int:
        return self.name.count(self.delimiter) if self.delimiter else 0


class Folder(FolderNaming, models.Model):
    """One mailbox of an account, with the IMAP state needed for incremental sync (RFC 7162)."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="folders")
    name = models.CharField(max_length=1000)  # full server path, decoded from modified UTF-7
    delimiter = models.CharField(max_length=1, blank=True)
    special_use = models.CharField(max_length=10, choices=SpecialUse.choices, blank=True, default="")
    subscribed = models.BooleanField(default=True)
    selectable = models.BooleanField(default=True)
    is_local = models.BooleanField(default=False)  # exists only in the cache (POP3 accounts)
    # The person wants new mail here pushed at once (an IDLE watch besides the Inbox's).
    notify = models.BooleanField(default=False)

    uidvalidity = models.BigIntegerField(null=True, blank=True)
    uidnext = models.BigIntegerField(null=True, blank=True)
    highestmodseq = models.BigIntegerField(null=True, blank=True)
    # Highest UID whose message is stored: an interrupted first sync resumes above it.
    synced_uid = models.BigIntegerField(default=0)
    server_count = models.PositiveIntegerField(default=0)  # EXISTS at the last sync
    total_count = models.PositiveIntegerField(default=0)
    unread_count = models.PositiveIntegerField(default=0)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="folder_unique_name")]
        ordering = ["account_id", "name"]

    def __str__(self) -> str:
        return self.name


class Thread(models.Model):
    """A conversation: messages linked by Message-ID / In-Reply-To / References, across folders."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="threads")
    subject = models.CharField(max_length=500, blank=True)  # normalised (no Re:/Fwd:)
    last_date = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["account", "subject"])]

    def __str__(self) -> str:
        return self.subject or f"thread {self.pk}"


class ThreadKey(models.Model):
    """Every Message-ID seen in a message or its references, pointing at its thread.

    Two replies to a message that is not in the cache still meet here (JWZ's empty containers).
    """

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="+")
    message_id = models.CharField(max_length=500)
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="keys")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "message_id"], name="threadkey_unique")]

    def __str__(self) -> str:
        return self.message_id


class Message(models.Model):
    """One message in one folder, as cached from the server (or downloaded by POP3)."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="messages")
    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="messages")
    uid = models.BigIntegerField()  # IMAP UID; for local folders a per-folder counter
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )

    seen = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    answered = models.BooleanField(default=False)
    draft = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    keywords = models.JSONField(default=list, blank=True)
    modseq = models.BigIntegerField(null=True, blank=True)

    internal_date = models.DateTimeField()
    size = models.PositiveIntegerField(default=0)
    date = models.DateTimeField(db_index=False)  # Date: header, else INTERNALDATE (sort key)
    subject = models.TextField(blank=True)
    from_name = models.CharField(max_length=300, blank=True)
    from_email = models.CharField(max_length=320, blank=True)
    sender = models.JSONField(default=list, blank=True)  # [[name, email], ...]
    reply_to = models.JSONField(default=list, blank=True)
    to = models.JSONField(default=list, blank=True)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    message_id = models.CharField(max_length=500, blank=True)
    in_reply_to = models.CharField(max_length=500, blank=True)
    references = models.TextField(blank=True)  # space-separated ids
    snippet = models.CharField(max_length=300, blank=True)
    has_attachments = models.BooleanField(default=False)
    parse_problems = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["folder", "uid"], name="message_unique_uid")]
        indexes = [
            # Keyset pagination of a folder by date (newest first), ties broken by id.
            models.Index(fields=["folder", "-date", "-id"], name="message_folder_date"),
            # Search across all folders of an account, newest first; and the other sort orders (not
            # subject: a B-tree entry must stay under ~2.7 kB on PostgreSQL, and subjects are long).
            models.Index(fields=["account", "-date", "-id"], name="message_account_date"),
            models.Index(fields=["folder", "from_name", "id"], name="message_folder_sender"),
            models.Index(fields=["folder", "-size", "-id"], name="message_folder_size"),
            models.Index(fields=["account", "message_id"], name="message_account_msgid"),
            models.Index(fields=["thread", "date"], name="message_thread_date"),
        ]

    def __str__(self) -> str:
        return f"{self.folder_id}:{self.uid} {self.subject[:40]}"


class MessageBody(models.Model):
    """The raw RFC 822 bytes and the readable text of a message (compressed by webmail.mail.blobs:
    zstandard; rows from before 2026-11-27 zlib).

    Kept apart from Message so that lists never load them.
    """

    message = models.OneToOneField(Message, on_delete=models.CASCADE, primary_key=True, related_name="body")
    raw_compressed = models.BinaryField()
    text = models.TextField(blank=True)  # text/plain, or text/html as text: what search indexes

    def __str__(self) -> str:
        return f"body of {self.message_id}"


class SyncProgress:
    """Whether an account's first sync is under way (shared by the model and the folder tree's rows)."""

    __slots__ = ()
    progress_done: int
    progress_total: int

    @property
    def in_first_sync(self) -> bool:
        return self.progress_total > 0 and self.progress_done < self.progress_total


class SyncState(SyncProgress, models.Model):
    """How an account's sync is going: progress of a first sync, failures and the retry schedule."""

    account = models.OneToOneField(
        MailAccount, on_delete=models.CASCADE, primary_key=True, related_name="sync"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)  # last successful full pass
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)  # consecutive failed passes
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"sync of account {self.account_id}"


class Pop3Download(models.Model):
    """The UIDL ledger of a POP3 account (RFC 1939 7): one row per message already downloaded.

    Written in the same transaction as the message it stored, so a crash between download and DELE
    neither loses the message nor stores it twice.
    """

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="pop3_downloads")
    uidl = models.CharField(max_length=255)  # the server's UIDL, or "sha256:<hash of TOP n 0>" without UIDL
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    downloaded_at = models.DateTimeField(default=timezone.now)
    deleted_from_server_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "uidl"], name="pop3download_unique_uidl")]

    def __str__(self) -> str:
        return f"{self.account_id}:{self.uidl}"


class PendingChange(models.Model):
    """A change made in the cache that a task still has to carry to the server (write-back).

    kind "flags": payload {"add": [...], "remove": [...]} on `uids` of `folder`.
    kind "move"/"copy": `uids` of `folder` to payload {"target": folder id}; `messages` are the cache
    rows (moved rows wear a placeholder uid of -pk until the server's COPYUID gives the real one).
    kind "expunge": remove `uids` from `folder` for good.
    kind "append": the cached `messages` (raw bytes in their MessageBody) to `folder`.
    """

    class Kind(models.TextChoices):
        FLAGS = "flags"
        MOVE = "move"
        COPY = "copy"
        EXPUNGE = "expunge"
        APPEND = "append"

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="pending_changes")
    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    uids = models.JSONField(default=list, blank=True)
    messages = models.JSONField(default=list, blank=True)  # Message ids
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} on {self.folder_id} ({len(self.uids)} uids)"
