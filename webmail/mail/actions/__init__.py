"""Every write to the mail cache, by domain; events are published only from here, after commit."""
