"""Views of the mail app, a module per page."""
