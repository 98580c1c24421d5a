"""Pages of composing and sending, a module per page."""
