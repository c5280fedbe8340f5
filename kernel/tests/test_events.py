"""The exchange fan-out: batches of one loop turn, handed over at the next, in order."""

import asyncio
import logging

from ferro import Exchange
from ferro.events import Events
from ferro.plugins import make_plugin_manager


def exchange(n: int) -> Exchange:
    return Exchange(request_id=f"r-{n}", operation="chat", model="m", provider="a",
                    stream=False, status=200, started=0.0, duration=0.01)


def events_seen_by(*names: str) -> tuple[Events, list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []
    events = Events(make_plugin_manager(env={}))
    for name in names:
        events.add(lambda ex, name=name: seen.append((name, ex.request_id)))
    return events, seen


async def test_a_turns_exchanges_reach_every_listener_at_the_next_in_order():
    events, seen = events_seen_by("log", "metrics")
    events.emit(exchange(1))
    events.emit_made(lambda: exchange(2))
    assert seen == [], "nothing on the request's path"
    await asyncio.sleep(0)
    assert seen == [("log", "r-1"), ("log", "r-2"), ("metrics", "r-1"), ("metrics", "r-2")]


async def test_a_configs_own_listeners_hear_only_its_exchanges():
    events, seen = events_seen_by("kernel")
    own: list[str] = []
    events.emit(exchange(1), [lambda ex: own.append(ex.request_id)])
    events.emit(exchange(2))
    await asyncio.sleep(0)
    assert [rid for _, rid in seen] == ["r-1", "r-2"] and own == ["r-1"]


async def test_an_exchange_that_cannot_be_made_is_logged_and_the_rest_go_on(caplog):
    events, seen = events_seen_by("log")

    def broken() -> Exchange:
        raise ValueError("no")

    events.emit_made(broken)
    events.emit(exchange(2))
    with caplog.at_level(logging.ERROR, logger="ferro.events"):
        await asyncio.sleep(0)
    assert seen == [("log", "r-2")]
    assert "could not be made" in caplog.text


def test_off_a_loop_an_exchange_is_handed_over_at_once():
    events, seen = events_seen_by("log")
    events.emit(exchange(1))
    assert seen == [("log", "r-1")]


async def test_drain_hands_over_what_is_pending():
    events, seen = events_seen_by("log")
    events.emit(exchange(1))
    await events.drain()
    assert seen == [("log", "r-1")]
