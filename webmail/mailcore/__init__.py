"""Pure-Python mail protocols and message format: no Django, Celery or Channels."""
