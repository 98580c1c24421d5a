"""Full-text search over cached messages: FTS5 on SQLite, a GIN-indexed tsvector on PostgreSQL.

Both engines get a table named mail_message_fts keyed by message id, filled by triggers on
mail_messagebody (a message's body row is written right after its Message row) and emptied when
the body or the message goes. Four parts: subject, sender, recipients, body (see mail/search.py).

Caveat: on SQLite, a later migration that rebuilds mail_message or mail_messagebody (AlterField)
drops their triggers; such a migration must run this one's SQL again.
"""

from django.db import migrations

SQLITE_DOC = (
    "SELECT m.id, m.subject, m.from_name || ' ' || m.from_email, "
    "m.\"to\" || ' ' || m.cc || ' ' || m.bcc, {text} FROM mail_message m WHERE m.id = {id}"
)

SQLITE_FORWARD = [
    'CREATE VIRTUAL TABLE mail_message_fts USING fts5('
    'subject, sender, recipients, body, tokenize="unicode61 remove_diacritics 2")',
    "CREATE TRIGGER mail_messagebody_fts_ai AFTER INSERT ON mail_messagebody BEGIN "
    "INSERT INTO mail_message_fts(rowid, subject, sender, recipients, body) "
    + SQLITE_DOC.format(text="NEW.text", id="NEW.message_id")
    + "; END",
    "CREATE TRIGGER mail_messagebody_fts_au AFTER UPDATE OF text ON mail_messagebody BEGIN "
    "DELETE FROM mail_message_fts WHERE rowid = OLD.message_id; "
    "INSERT INTO mail_message_fts(rowid, subject, sender, recipients, body) "
    + SQLITE_DOC.format(text="NEW.text", id="NEW.message_id")
    + "; END",
    "CREATE TRIGGER mail_messagebody_fts_ad AFTER DELETE ON mail_messagebody BEGIN "
    "DELETE FROM mail_message_fts WHERE rowid = OLD.message_id; END",
    "CREATE TRIGGER mail_message_fts_ad AFTER DELETE ON mail_message BEGIN "
    "DELETE FROM mail_message_fts WHERE rowid = OLD.id; END",
    "INSERT INTO mail_message_fts(rowid, subject, sender, recipients, body) "
    "SELECT m.id, m.subject, m.from_name || ' ' || m.from_email, "
    "m.\"to\" || ' ' || m.cc || ' ' || m.bcc, b.text "
    "FROM mail_message m JOIN mail_messagebody b ON b.message_id = m.id",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS mail_message_fts_ad",
    "DROP TRIGGER IF EXISTS mail_messagebody_fts_ad",
    "DROP TRIGGER IF EXISTS mail_messagebody_fts_au",
    "DROP TRIGGER IF EXISTS mail_messagebody_fts_ai",
    "DROP TABLE IF EXISTS mail_message_fts",
]

# Punctuation inside addresses and URLs becomes spaces, so "alice@example.test" is indexed as the
# words alice, example, test (the query side splits the same way), like FTS5's unicode61.
PG_WORDS = "translate({col}, '@./-_:+=', '        ')"
PG_DOCUMENT = (
    "setweight(to_tsvector('simple', " + PG_WORDS.format(col="m.subject") + "), 'A') || "
    "setweight(to_tsvector('simple', " + PG_WORDS.format(col="m.from_name || ' ' || m.from_email") + "), 'B') || "
    "setweight(to_tsvector('simple', "
    + PG_WORDS.format(col="m.\"to\"::text || ' ' || m.cc::text || ' ' || m.bcc::text")
    + "), 'C') || "
    "setweight(to_tsvector('simple', " + PG_WORDS.format(col="left({text}, 200000)") + "), 'D')"
)

PG_FORWARD = [
    # No foreign key: Django's test flush TRUNCATEs mail_message without CASCADE.
    "CREATE TABLE mail_message_fts (message_id bigint PRIMARY KEY, document tsvector NOT NULL)",
    "CREATE INDEX mail_message_fts_document ON mail_message_fts USING gin (document)",
    "CREATE FUNCTION mail_message_fts_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO mail_message_fts (message_id, document) SELECT m.id, "
    + PG_DOCUMENT.format(text="NEW.text")
    + " FROM mail_message m WHERE m.id = NEW.message_id "
    "ON CONFLICT (message_id) DO UPDATE SET document = EXCLUDED.document; RETURN NULL; END $$",
    "CREATE FUNCTION mail_message_fts_forget() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "DELETE FROM mail_message_fts WHERE message_id = OLD.message_id; RETURN NULL; END $$",
    "CREATE TRIGGER mail_messagebody_fts_write AFTER INSERT OR UPDATE OF text ON mail_messagebody "
    "FOR EACH ROW EXECUTE FUNCTION mail_message_fts_write()",
    "CREATE TRIGGER mail_messagebody_fts_forget AFTER DELETE ON mail_messagebody "
    "FOR EACH ROW EXECUTE FUNCTION mail_message_fts_forget()",
    "INSERT INTO mail_message_fts (message_id, document) SELECT m.id, "
    + PG_DOCUMENT.format(text="b.text")
    + " FROM mail_message m JOIN mail_messagebody b ON b.message_id = m.id",
]
PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS mail_messagebody_fts_forget ON mail_messagebody",
    "DROP TRIGGER IF EXISTS mail_messagebody_fts_write ON mail_messagebody",
    "DROP FUNCTION IF EXISTS mail_message_fts_forget()",
    "DROP FUNCTION IF EXISTS mail_message_fts_write()",
    "DROP TABLE IF EXISTS mail_message_fts",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": SQLITE_FORWARD, "postgresql": PG_FORWARD}.get(vendor, [])
    for sql in statements:
        schema_editor.execute(sql, params=None)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": SQLITE_BACKWARD, "postgresql": PG_BACKWARD}.get(vendor, [])
    for sql in statements:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("mail", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
