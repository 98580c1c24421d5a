# One image for every process kind; pick the process with the command (see docker-compose.yml).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 WEBMAIL_VAR_DIR=/var/lib/webmail STATIC_ROOT=/var/lib/webmail/static
RUN useradd --system --home /var/lib/webmail webmail && mkdir -p /var/lib/webmail && chown webmail /var/lib/webmail
WORKDIR /opt/webmail
COPY pyproject.toml README.md manage.py ./
COPY webmail ./webmail
COPY accounts ./accounts
COPY templates ./templates
COPY static ./static
RUN pip install --no-cache-dir .
USER webmail
EXPOSE 8000
CMD ["uvicorn", "webmail.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--ws", "websockets-sansio", "--lifespan", "off"]
