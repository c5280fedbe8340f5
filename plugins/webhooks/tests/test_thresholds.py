"""Thresholds over sliding windows: crossed once, recovered once, measured over the window
only, and bounded in memory whatever the traffic."""

from ferro import Exchange
from ferro_webhooks.options import Threshold
from ferro_webhooks.thresholds import Samples, Thresholds, Window


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def exchange(status=200, duration=0.1, ttfb=0.05, cost=None):
    return Exchange(request_id="r", operation="chat", model="m", provider="p", stream=False,
                    status=status, started=0.0, duration=duration, ttfb=ttfb, cost=cost)


def server_error(e):
    return e.status >= 500


def watching(**threshold):
    clock = Clock()
    return Thresholds([Threshold(**threshold)], server_error, clock), clock


def feed(thresholds, *exchanges):
    for e in exchanges:
        thresholds.observe(e)


def kinds(events):
    return [(e.type, round(e.data["value"], 4)) for e in events]


def test_an_error_rate_is_reported_once_crossed_and_once_recovered():
    thresholds, clock = watching(metric="error_rate", above=0.2, window=60, min_requests=10)
    feed(thresholds, *[exchange()] * 8, *[exchange(503)] * 2)
    assert thresholds.check() == []  # 0.2 is not above 0.2
    feed(thresholds, exchange(502))
    events = thresholds.check()
    assert kinds(events) == [("threshold.crossed", 0.2727)]
    assert events[0].data == {"threshold": "error_rate above 0.2", "metric": "error_rate",
                              "value": 3 / 11, "above": 0.2, "recover_below": 0.2,
                              "window": 60.0, "requests": 11}
    feed(thresholds, *[exchange(500)] * 5)
    assert thresholds.check() == []  # still crossed: not said again
    clock.now += 61  # every failure leaves the window
    feed(thresholds, *[exchange()] * 10)
    assert kinds(thresholds.check()) == [("threshold.recovered", 0.0)]
    assert thresholds.check() == []


def test_nothing_is_said_below_min_requests():
    thresholds, clock = watching(metric="error_rate", above=0.1, min_requests=5)
    feed(thresholds, *[exchange(500)] * 4)
    assert thresholds.check() == []
    feed(thresholds, exchange(500))
    assert kinds(thresholds.check()) == [("threshold.crossed", 1.0)]
    clock.now += 120  # the window empties: no evidence of recovery yet
    assert thresholds.check() == []
    assert thresholds.watches[0].crossed


def test_recover_below_keeps_a_threshold_crossed_until_the_metric_is_well_back():
    thresholds, clock = watching(metric="error_rate", above=0.5, recover_below=0.2,
                                 window=10, min_requests=4)
    feed(thresholds, *[exchange(500)] * 3, exchange())
    assert kinds(thresholds.check()) == [("threshold.crossed", 0.75)]
    clock.now += 11
    feed(thresholds, exchange(500), *[exchange()] * 3)
    assert thresholds.check() == []  # 0.25: below above, not below recover_below
    clock.now += 11
    feed(thresholds, *[exchange()] * 4)
    assert kinds(thresholds.check()) == [("threshold.recovered", 0.0)]


def test_the_failure_rule_is_the_one_given():
    clock = Clock()
    thresholds = Thresholds([Threshold("error_rate", 0.4, min_requests=2)],
                            lambda e: e.status >= 400, clock)
    feed(thresholds, exchange(429), exchange())
    assert kinds(thresholds.check()) == [("threshold.crossed", 0.5)]


def test_p95_latency_is_the_nearest_rank_over_the_window_leaving_client_errors_out():
    thresholds, clock = watching(metric="p95_latency", above=2.0, window=60, min_requests=20)
    feed(thresholds, *[exchange(duration=0.1)] * 18, exchange(duration=3.0))
    feed(thresholds, *[exchange(400, duration=9.0)] * 5)  # not counted at all
    assert thresholds.check() == []  # 19 requests: too few
    feed(thresholds, exchange(503, duration=4.0))  # a failure is a wait too
    assert kinds(thresholds.check()) == [("threshold.crossed", 3.0)]  # rank 19 of 20
    clock.now += 61
    feed(thresholds, *[exchange(duration=0.2)] * 20)
    assert kinds(thresholds.check()) == [("threshold.recovered", 0.2)]


def test_p95_ttfb_counts_only_requests_that_got_a_first_byte():
    thresholds, _ = watching(metric="p95_ttfb", above=1.0, min_requests=3)
    feed(thresholds, exchange(ttfb=None), exchange(ttfb=1.5), exchange(ttfb=1.2))
    assert thresholds.check() == []
    feed(thresholds, exchange(ttfb=2.0))
    events = thresholds.check()
    assert kinds(events) == [("threshold.crossed", 2.0)]
    assert events[0].data["requests"] == 3


def test_spend_is_the_sum_of_the_priced_requests_in_the_window():
    thresholds, clock = watching(metric="spend", above=1.0, window=3600, name="hourly spend")
    feed(thresholds, exchange(cost=0.4), exchange(cost=None), exchange(cost=0.5))
    assert thresholds.check() == []
    clock.now += 1800
    feed(thresholds, exchange(cost=0.3))
    events = thresholds.check()
    assert kinds(events) == [("threshold.crossed", 1.2)]
    assert events[0].data["threshold"] == "hourly spend"
    assert events[0].data["requests"] == 3
    clock.now += 1801  # the first two leave the window; no new traffic is needed
    assert kinds(thresholds.check()) == [("threshold.recovered", 0.3)]


def test_each_threshold_is_watched_on_its_own():
    clock = Clock()
    thresholds = Thresholds([Threshold("error_rate", 0.5, min_requests=1),
                             Threshold("spend", 10.0)], server_error, clock)
    feed(thresholds, exchange(500, cost=1.0))
    assert [e.data["metric"] for e in thresholds.check()] == ["error_rate"]
    feed(thresholds, exchange(500, cost=20.0))  # the error rate stays crossed: not said again
    assert [e.data["metric"] for e in thresholds.check()] == ["spend"]


def test_a_window_keeps_at_most_sixty_one_steps_whatever_the_traffic():
    window = Window(60.0)
    for i in range(100_000):
        window.add(i * 0.01, 1.0)  # 1000 s of 100 requests a second
        if i % 1000 == 0:
            window.trim(i * 0.01)
    window.trim(999.99)
    assert len(window._steps) <= 61
    assert 5900 <= window.count <= 6000  # the last 60 s, to a step of 1 s
    assert window.total == window.count


def test_samples_keep_the_latest_cap_values():
    samples = Samples(60.0, cap=100)
    for i in range(1000):
        samples.add(float(i) / 100, float(i))
    assert len(samples.values) == 100
    assert samples.percentile(0.95) == 994.0
