"""The mail cache and everything the browser does with mail."""
