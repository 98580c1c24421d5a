"""Actions of composing and sending: the only code that writes outgoing messages (drafts.py, outbox.py)."""
