"""The staff-only operator dashboard: figures, people, accounts, limits, invites, audit log."""
