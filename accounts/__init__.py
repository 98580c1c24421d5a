"""People, their mail accounts and identities, encrypted credentials, sign-up and log-in."""
