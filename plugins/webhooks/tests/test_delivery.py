"""Delivery: signed POSTs, retries with backoff on what is worth retrying and on nothing
else, the bounded queue, and the bounded flush at shutdown. HTTP mocked with aioresponses;
the sleeps between tries are recorded instead of slept."""

import asyncio
import logging
import time

import aiohttp
import pytest
from aioresponses import aioresponses
from ferro_webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from ferro_webhooks.delivery import Channel, Outbox, _Sometimes
from ferro_webhooks.events import new_event
from ferro_webhooks.options import Delivery, Endpoint, Options, RetryOptions

URL = "http://127.0.0.1:9/hook"
SECRET = "s3cret"


class Sleeps:
    """Stands in for asyncio.sleep: records each wait, and only lets other tasks run."""

    def __init__(self):
        self.waits = []

    async def __call__(self, seconds):
        self.waits.append(seconds)
        await asyncio.sleep(0)


def channel(session, sleep, *, url=URL, **retry):
    retry = {"backoff": 1.0, "factor": 2.0, "max_backoff": 30.0, "jitter": 0.0, **retry}
    made = Channel(Endpoint(url, SECRET), Delivery(retry=RetryOptions(**retry)), sleep=sleep)
    made.session = session
    return made


def posts(mocked, url=URL):
    return [call for (method, where), calls in mocked.requests.items()
            if method == "POST" and str(where) == url for call in calls]


async def test_a_post_is_signed_and_carries_the_event_id_and_type(http_session):
    event = new_event("request.failed", {"status": 503})
    with aioresponses() as mocked:
        mocked.post(URL, status=204)
        assert await channel(http_session, Sleeps()).deliver(event)
        [call] = posts(mocked)
    headers, body = call.kwargs["headers"], call.kwargs["data"]
    assert body == event.body()
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Ferro-Event-Id"] == event.id
    assert headers["X-Ferro-Event-Type"] == "request.failed"
    assert abs(int(headers[TIMESTAMP_HEADER]) - time.time()) < 5
    assert verify_signature(SECRET, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
    assert not verify_signature("other", body, headers[TIMESTAMP_HEADER],
                                headers[SIGNATURE_HEADER])


async def test_5xx_are_retried_with_exponential_backoff_until_delivered(http_session):
    sleeps = Sleeps()
    sender = channel(http_session, sleeps)
    with aioresponses() as mocked:
        for status in (500, 503, 502, 200):
            mocked.post(URL, status=status)
        assert await sender.deliver(new_event("request.failed", {}))
        assert len(posts(mocked)) == 4
    assert sleeps.waits == [1.0, 2.0, 4.0]
    assert (sender.delivered, sender.failed) == (1, 0)


async def test_every_try_carries_the_same_event_id(http_session):
    with aioresponses() as mocked:
        mocked.post(URL, status=500)
        mocked.post(URL, status=200)
        event = new_event("request.failed", {})
        await channel(http_session, Sleeps()).deliver(event)
        ids = [call.kwargs["headers"]["X-Ferro-Event-Id"] for call in posts(mocked)]
    assert ids == [event.id, event.id]


async def test_backoff_is_capped_and_jittered(http_session):
    sleeps = Sleeps()
    sender = channel(http_session, sleeps, attempts=6, backoff=1.0, max_backoff=5.0,
                     jitter=0.5)
    with aioresponses() as mocked:
        mocked.post(URL, status=503, repeat=True)
        assert not await sender.deliver(new_event("request.failed", {}))
    ceilings = [1.0, 2.0, 4.0, 5.0, 5.0]
    assert len(sleeps.waits) == 5
    for wait, ceiling in zip(sleeps.waits, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling


async def test_retry_after_replaces_the_backoff_up_to_max_backoff(http_session):
    sleeps = Sleeps()
    sender = channel(http_session, sleeps, max_backoff=10.0)
    with aioresponses() as mocked:
        mocked.post(URL, status=429, headers={"Retry-After": "3"})
        mocked.post(URL, status=503, headers={"Retry-After": "3600"})
        mocked.post(URL, status=200)
        assert await sender.deliver(new_event("request.failed", {}))
    assert sleeps.waits == [3.0, 10.0]


@pytest.mark.parametrize("failure", [aiohttp.ClientConnectionError("refused"),
                                     TimeoutError()], ids=["connection-error", "timeout"])
async def test_connection_errors_and_timeouts_are_retried(http_session, failure):
    sleeps = Sleeps()
    sender = channel(http_session, sleeps)
    with aioresponses() as mocked:
        mocked.post(URL, exception=failure)
        mocked.post(URL, status=200)
        assert await sender.deliver(new_event("request.failed", {}))
        assert len(posts(mocked)) == 2
    assert sleeps.waits == [1.0]


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
async def test_other_4xx_are_not_retried(http_session, status, caplog):
    sleeps = Sleeps()
    sender = channel(http_session, sleeps)
    with aioresponses() as mocked, caplog.at_level(logging.WARNING, "ferro.webhooks"):
        mocked.post(URL, status=status, repeat=True)
        assert not await sender.deliver(new_event("request.failed", {}))
        assert len(posts(mocked)) == 1
    assert sleeps.waits == []
    assert (sender.delivered, sender.failed) == (0, 1)
    assert f"the endpoint answered {status}" in caplog.text


async def test_a_redirect_is_not_followed(http_session):
    elsewhere = "http://127.0.0.1:9/elsewhere"
    with aioresponses() as mocked:
        mocked.post(URL, status=307, headers={"Location": elsewhere})
        mocked.post(elsewhere, status=200)
        assert not await channel(http_session, Sleeps()).deliver(new_event("request.failed", {}))
        assert posts(mocked, elsewhere) == []
        assert len(posts(mocked)) == 1


async def test_a_delivery_gives_up_after_its_attempts(http_session):
    sleeps = Sleeps()
    sender = channel(http_session, sleeps, attempts=3)
    with aioresponses() as mocked:
        mocked.post(URL, status=500, repeat=True)
        assert not await sender.deliver(new_event("request.failed", {}))
        assert len(posts(mocked)) == 3
    assert sleeps.waits == [1.0, 2.0]
    assert sender.failed == 1


async def test_a_full_queue_drops_and_counts_and_logs_once(caplog):
    sender = Channel(Endpoint(URL, SECRET), Delivery(queue_size=2))
    with caplog.at_level(logging.WARNING, "ferro.webhooks"):
        for _ in range(5):
            sender.offer(new_event("request.failed", {}))
    assert sender.queue.qsize() == 2
    assert sender.dropped == 3
    assert [r.getMessage() for r in caplog.records] == [
        f"webhook {URL}: queue full, a request.failed event was dropped "
        "(1 time(s) since the last such message)"]


def test_a_repeated_warning_is_logged_at_most_once_per_interval(caplog):
    clock = [0.0]
    warning = _Sometimes("endpoint %s failed", interval=60.0, clock=lambda: clock[0])
    with caplog.at_level(logging.WARNING, "ferro.webhooks"):
        for _ in range(4):
            warning.warn("a")
        clock[0] = 61.0
        warning.warn("b")
    assert [r.getMessage() for r in caplog.records] == [
        "endpoint a failed (1 time(s) since the last such message)",
        "endpoint b failed (4 time(s) since the last such message)"]


def options(*endpoints, **delivery):
    return Options(endpoints=list(endpoints), delivery=Delivery(**delivery))


async def test_an_event_goes_only_to_the_endpoints_sent_its_type():
    outbox = Outbox(options(Endpoint("http://127.0.0.1:9/a", SECRET, ["request.failed"]),
                            Endpoint("http://127.0.0.1:9/b", SECRET)))
    outbox.publish(new_event("circuit_breaker.opened", {}))
    outbox.publish(new_event("request.failed", {}))
    assert [c.queue.qsize() for c in outbox.channels] == [1, 2]
    assert outbox.wants("request.failed") and outbox.wants("threshold.crossed")
    assert not Outbox(options(Endpoint(URL, SECRET, ["request.failed"]))).wants(
        "threshold.crossed")


async def test_closing_sends_what_is_queued(http_session):
    sleeps = Sleeps()
    outbox = Outbox(options(Endpoint(URL, SECRET), senders=1), sleep=sleeps)
    for _ in range(5):
        outbox.publish(new_event("request.failed", {}))
    with aioresponses() as mocked:
        for _ in range(5):  # each event is refused once, then taken
            mocked.post(URL, status=503)
            mocked.post(URL, status=200)
        outbox.start(http_session)
        await outbox.close()
        assert len(posts(mocked)) == 10
    assert len(sleeps.waits) == 5
    assert outbox.channels[0].delivered == 5
    assert outbox.channels[0].pending == 0


async def test_closing_gives_up_after_flush_timeout(http_session, caplog):
    async def forever(_seconds):
        await asyncio.Event().wait()

    outbox = Outbox(options(Endpoint(URL, SECRET), senders=1, flush_timeout=0.2),
                    sleep=forever)
    for _ in range(3):
        outbox.publish(new_event("request.failed", {}))
    with aioresponses() as mocked, caplog.at_level(logging.WARNING, "ferro.webhooks"):
        mocked.post(URL, status=503, repeat=True)
        outbox.start(http_session)
        started = time.monotonic()
        await outbox.close()
        assert time.monotonic() - started < 2
    assert "3 event(s) not delivered within flush_timeout (0.2s)" in caplog.text
