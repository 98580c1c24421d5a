"""The WebSocket consumer: only signed-in people, only their own events."""

from __future__ import annotations

import pytest
from channels.testing.websocket import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from webmail.mail.consumers import PersonConsumer
from webmail.mail.events import send_event

pytestmark = pytest.mark.django_db(transaction=True)


def in_own_loop(coroutine_function) -> None:
    """Run an async test body on a fresh event loop in its own thread.

    Playwright's sync API leaves an event loop on the main thread, where async_to_sync refuses to run.
    Each loop gets a channel layer of its own: a layer's Redis connections belong to the loop that
    opened them (a web process has one loop for its life; these tests start one per test).
    """
    import asyncio
    import threading

    from channels.layers import channel_layers

    failure: list[BaseException] = []

    def target() -> None:
        channel_layers.backends.clear()
        try:
            asyncio.run(coroutine_function())
        except BaseException as exc:  # handed back to the test thread
            failure.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    if failure:
        raise failure[0]


async def _connect(user):
    communicator = WebsocketCommunicator(PersonConsumer.as_asgi(), "/ws/")
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


def test_an_anonymous_socket_is_closed():
    async def run():
        communicator, connected, code = await _connect(AnonymousUser())
        assert not connected
        assert code == 4401

    in_own_loop(run)


def test_a_person_receives_their_own_events_and_never_another_persons(alice, bob):
    async def run():
        a, connected_a, _ = await _connect(alice)
        b, connected_b, _ = await _connect(bob)
        assert connected_a and connected_b
        assert await a.receive_json_from() == {"type": "hello"}
        assert await b.receive_json_from() == {"type": "hello"}
        event = {
            "type": "mail.new",
            "account": 1,
            "folder": 2,
            "count": 1,
            "latest": {"from": "x", "subject": "y"},
        }
        await _send(alice.pk, event)
        assert await a.receive_json_from(timeout=5) == event
        assert await b.receive_nothing(timeout=0.5)
        await a.disconnect()
        await b.disconnect()

    in_own_loop(run)


def test_every_open_tab_gets_the_event(alice):
    async def run():
        tabs = [(await _connect(alice))[0] for _ in range(3)]
        for tab in tabs:
            await tab.receive_json_from()
        await _send(alice.pk, {"type": "mail.changed", "folders": [1]})
        for tab in tabs:
            assert (await tab.receive_json_from(timeout=5))["type"] == "mail.changed"
            await tab.disconnect()

    in_own_loop(run)


def test_messages_outside_the_protocol_are_ignored(alice):
    async def run():
        tab, _, _ = await _connect(alice)
        await tab.receive_json_from()
        await tab.send_to(text_data="not json at all")
        await tab.send_json_to({"type": "subscribe", "group": "person.999"})
        await tab.send_json_to({"type": "ping"})
        assert await tab.receive_json_from(timeout=5) == {"type": "pong"}
        await tab.disconnect()

    in_own_loop(run)


async def _send(user_id: int, event: dict) -> None:
    import asyncio

    future = send_event(user_id, event)
    await asyncio.wrap_future(future)


def test_an_event_type_without_a_handler_is_forwarded_not_fatal(alice):
    async def run():
        tab, _, _ = await _connect(alice)
        await tab.receive_json_from()
        await _send(alice.pk, {"type": "future.kind", "x": 1})
        assert await tab.receive_json_from(timeout=5) == {"type": "future.kind", "x": 1}
        await tab.send_json_to({"type": "ping"})
        assert await tab.receive_json_from(timeout=5) == {"type": "pong"}
        await tab.disconnect()

    in_own_loop(run)


def test_the_channel_layer_may_wait_out_its_blocking_read():
    """redis-py 8 times reads out after 5 s unless told otherwise, the same 5 s channels_redis waits
    in BZPOPMIN for a quiet process's next event: sockets then dropped now and again (seen: 7 of 250
    idle WebSockets in 35 s). The layer's reads must not time out before that wait ends."""
    from channels.layers import get_channel_layer
    from channels_redis.utils import create_pool

    layer = get_channel_layer()
    for host in layer.hosts:
        timeout = create_pool(host).connection_kwargs["socket_timeout"]
        assert timeout is None or timeout > layer.brpop_timeout + 5


def test_a_socket_quiet_for_longer_than_the_layers_wait_still_receives_events(alice):
    async def run():
        import asyncio

        tab, _, _ = await _connect(alice)
        await tab.receive_json_from()
        await asyncio.sleep(6)  # past channels_redis' 5 s BZPOPMIN with nothing to read
        await _send(alice.pk, {"type": "mail.new", "count": 1})
        assert await tab.receive_json_from(timeout=5) == {"type": "mail.new", "count": 1}
        await tab.disconnect()

    in_own_loop(run)
