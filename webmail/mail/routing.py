"""WebSocket routes."""

from django.urls import path

from webmail.mail.consumers import PersonConsumer

websocket_urlpatterns = [path("ws/", PersonConsumer.as_asgi())]
