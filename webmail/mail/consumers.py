"""WebSocket consumer: forwards a person's events to each of their open pages."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import JsonWebsocketConsumer

from webmail.mail.events import person_group

log = logging.getLogger(__name__)


class PersonConsumer(JsonWebsocketConsumer):
    """Join the authenticated person's own group and forward its events; close for anyone else."""

    def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            self.close(code=4401)
            return
        self.group = person_group(user.pk)
        async_to_sync(self.channel_layer.group_add)(self.group, self.channel_name)
        self.accept()
        self.send_json({"type": "hello"})

    def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            async_to_sync(self.channel_layer.group_discard)(self.group, self.channel_name)

    @classmethod
    def decode_json(cls, text_data: str) -> Any:
        try:
            return super().decode_json(text_data)
        except ValueError:
            return None

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            self.send_json({"type": "pong"})
            return
        log.info("ignored a client message that is not in the protocol")

    def forward(self, event: dict[str, Any]) -> None:
        """Forward an event to the browser unchanged."""
        self.send_json(event)

    @database_sync_to_async
    def dispatch(self, message: dict[str, Any]) -> None:
        """Send websocket.* messages to their handlers; forward every event of the person's group.

        Only server code publishes to the group (actions, after commit), so whatever arrives there
        (mail.new, mail.changed, account.status, compose.state, ...) is meant for the page.
        """
        if message.get("type", "").startswith("websocket."):
            getattr(self, get_handler_name(message))(message)
        else:
            self.forward(message)
