"""Full-text indexing leaves the sync: a stored body is queued, and a task indexes the queue.

Until now the triggers of 0002 built each message's full-text entry inside the sync's own
transaction: on SQLite a fifth of an initial sync, on PostgreSQL (to_tsvector and the GIN index)
more than half of it. Now inserting or changing a body only records its message id in
mail_fts_pending; webmail/mail/fulltext.py indexes that queue in chunks, in a Celery task started
when a sync commits (and by beat as a safety net). Deleting a body or a message still removes its
entry at once, and drops it from the queue.

Caveat as in 0002: on SQLite, a later migration that rebuilds mail_message or mail_messagebody
drops their triggers and must run this SQL again.
"""

from django.db import migrations

SQLITE_FORWARD = [
    "CREATE TABLE mail_fts_pending (message_id INTEGER PRIMARY KEY)",
    "DROP TRIGGER IF EXISTS mail_messagebody_fts_ai",
    "DROP TRIGGER IF EXISTS mail_messagebody_fts_au",
    "DROP TRIGGER IF EXISTS mail_messagebody_fts_ad",
    "DROP TRIGGER IF EXISTS mail_message_fts_ad",
    "CREATE TRIGGER mail_messagebody_fts_ai AFTER INSERT ON mail_messagebody BEGIN "
    "INSERT OR IGNORE INTO mail_fts_pending (message_id) VALUES (NEW.message_id); END",
    "CREATE TRIGGER mail_messagebody_fts_au AFTER UPDATE OF text ON mail_messagebody BEGIN "
    "INSERT OR IGNORE INTO mail_fts_pending (message_id) VALUES (NEW.message_id); END",
    "CREATE TRIGGER mail_messagebody_fts_ad AFTER DELETE ON mail_messagebody BEGIN "
    "DELETE FROM mail_fts_pending WHERE message_id = OLD.message_id; "
    "DELETE FROM mail_message_fts WHERE rowid = OLD.message_id; END",
    "CREATE TRIGGER mail_message_fts_ad AFTER DELETE ON mail_message BEGIN "
    "DELETE FROM mail_fts_pending WHERE message_id = OLD.id; "
    "DELETE FROM mail_message_fts WHERE rowid = OLD.id; END",
]

PG_FORWARD = [
    "CREATE TABLE mail_fts_pending (message_id bigint PRIMARY KEY)",
    "CREATE OR REPLACE FUNCTION mail_message_fts_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO mail_fts_pending (message_id) VALUES (NEW.message_id) ON CONFLICT DO NOTHING; "
    "RETURN NULL; END $$",
    # The queue row first: an indexer holding it (SELECT ... FOR UPDATE) makes this wait until its
    # entry is committed, which the next statement then sees and deletes. The other order let an
    # entry for a deleted message be written just after its deletion, and stay.
    "CREATE OR REPLACE FUNCTION mail_message_fts_forget() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "DELETE FROM mail_fts_pending WHERE message_id = OLD.message_id; "
    "DELETE FROM mail_message_fts WHERE message_id = OLD.message_id; RETURN NULL; END $$",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in {"sqlite": SQLITE_FORWARD, "postgresql": PG_FORWARD}.get(vendor, []):
        schema_editor.execute(sql, params=None)


def backward(apps, schema_editor):
    """Back to indexing inside the sync: index what is queued, then restore 0002's triggers."""
    import importlib

    old = importlib.import_module("webmail.mail.migrations.0002_message_fulltext")
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for name in (
            "mail_messagebody_fts_ai",
            "mail_messagebody_fts_au",
            "mail_messagebody_fts_ad",
            "mail_message_fts_ad",
        ):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)
        schema_editor.execute(
            "DELETE FROM mail_message_fts WHERE rowid IN (SELECT message_id FROM mail_fts_pending)",
            params=None,
        )
        schema_editor.execute(
            "INSERT INTO mail_message_fts(rowid, subject, sender, recipients, body) "
            "SELECT m.id, m.subject, m.from_name || ' ' || m.from_email, "
            "m.\"to\" || ' ' || m.cc || ' ' || m.bcc, b.text FROM mail_message m "
            "JOIN mail_messagebody b ON b.message_id = m.id "
            "WHERE m.id IN (SELECT message_id FROM mail_fts_pending)",
            params=None,
        )
        for sql in old.SQLITE_FORWARD[1:5]:  # the four triggers
            schema_editor.execute(sql, params=None)
    elif vendor == "postgresql":
        schema_editor.execute(
            "INSERT INTO mail_message_fts (message_id, document) SELECT m.id, "
            + old.PG_DOCUMENT.format(text="b.text")
            + " FROM mail_message m JOIN mail_messagebody b ON b.message_id = m.id "
            "WHERE m.id IN (SELECT message_id FROM mail_fts_pending) "
            "ON CONFLICT (message_id) DO UPDATE SET document = EXCLUDED.document",
            params=None,
        )
        for sql in old.PG_FORWARD[2:4]:  # the two functions as 0002 made them
            schema_editor.execute(sql.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"), params=None)
    else:
        return
    schema_editor.execute("DROP TABLE IF EXISTS mail_fts_pending", params=None)


class Migration(migrations.Migration):
    dependencies = [("mail", "0004_folder_notify")]

    operations = [migrations.RunPython(forward, backward)]
