"""Running the service: the all-in-one supervisor, the embedded Redis, health checks."""
