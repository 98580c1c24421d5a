"""PostgreSQL: cheaper out-of-line storage for message bodies.

raw_compressed holds Zstandard frames, which do not compress; PostgreSQL still ran pglz over every
one before moving it out of line (a third of the server's time in an initial sync). EXTERNAL keeps
the out-of-line storage and skips the attempt. The readable text does compress: it is compressed
with LZ4 instead of pglz where the server has it (PostgreSQL 14+ built with lz4, as Debian's is),
several times faster for a similar size. Other databases: nothing to do.
"""

import django.db
from django.db import migrations


def _set(schema_editor, storage: str, compression: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE mail_messagebody ALTER COLUMN raw_compressed SET STORAGE {storage}")
    try:
        with django.db.transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute(f"ALTER TABLE mail_messagebody ALTER COLUMN text SET COMPRESSION {compression}")
    except django.db.DatabaseError:
        pass  # a server without lz4 keeps pglz


def forward(apps, schema_editor):
    _set(schema_editor, "EXTERNAL", "lz4")


def backward(apps, schema_editor):
    _set(schema_editor, "EXTENDED", "default")


class Migration(migrations.Migration):
    dependencies = [("mail", "0005_fulltext_queue")]

    operations = [migrations.RunPython(forward, backward)]
