"""Views of the operator dashboard, a module per page."""
