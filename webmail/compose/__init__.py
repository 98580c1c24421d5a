"""Writing and sending mail: compose, drafts, the outbox state machine and SMTP submission."""
