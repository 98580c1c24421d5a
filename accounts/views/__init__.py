"""Views of the accounts app, a module per page."""
