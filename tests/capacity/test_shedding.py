"""Load shedding (core/shedding.py): past the knee, requests that waited too long for a thread get 503 +
Retry-After at once, the rest are served; with shedding off the same requests all wait their turn.

The overload is made real and deterministic: gunicorn with one worker and one thread, that thread held by a
request sleeping in the database, and a crowd of concurrent requests queued behind it. How long each waited is
what gunicorn's worker measured (QueueTimedThreadWorker), not a guess.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.test import Client

from core.shedding import proxy_queue_wait_s
from tests.capacity.infra import AppServer, sleeping_queries, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

CROWD = ["/api/v1/products/", "/api/v1/products/", "/api/v1/categories/", "/", "/healthz"]


class OneThread:
    """A real gunicorn with one request thread (and the slow test routes), and every answer it gave, by key."""

    def __init__(self, app_server_factory: Callable[..., AppServer], **env: str) -> None:
        database = settings.DATABASES["default"]
        self.database_name = str(database["NAME"])
        self.server = app_server_factory(
            DJANGO_SETTINGS_MODULE="tests.capacity.settings_slow_routes",
            DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{self.database_name}",
            GUNICORN_THREADS="1",
            **env,
        )
        self.answers: dict[str, Any] = {}

    def fetch(self, key: str, path: str) -> None:
        with self.server.client() as http:
            try:
                self.answers[key] = http.get(path)
            except httpx.HTTPError as error:  # a timeout or a reset is an answer too: the test reports it
                self.answers[key] = type(error).__name__

    def start(self, key: str, path: str) -> threading.Thread:
        thread = threading.Thread(target=self.fetch, args=(key, path))
        thread.start()
        return thread

    def sleeping(self) -> int:
        """How many requests are sleeping in the database right now (the hogs holding the thread)."""
        return sleeping_queries(self.database_name)

    def wait_for_one_sleeping(self) -> None:
        assert wait_until(lambda: self.sleeping() == 1, timeout_s=30, every_s=0.02)


def _overload(app_server_factory: Callable[..., AppServer], *, max_queue_ms: str) -> dict[str, Any]:
    """One thread busy for 2 s in the database, then the crowd at once; every answer, and one fresh request after.

    Only the limit is on, judged when the thread takes each request: the door's prediction (which can refuse
    part of the crowd on arrival, when the server's first requests were slow), the standing-queue rule and the
    reaper have tests of their own below."""
    shop = OneThread(
        app_server_factory,
        SHEDDING_MAX_QUEUE_MS=max_queue_ms,
        SHEDDING_PREDICT_WAIT="false",
        SHEDDING_STANDING_QUEUE_MS="0",
        SHEDDING_REAP_QUEUE="false",
    )
    hog = shop.start("hog", "/api/_test/slow-query/?seconds=2")
    shop.wait_for_one_sleeping()
    crowd = [shop.start(f"{index} {path}", path) for index, path in enumerate(CROWD)]
    for thread in [hog, *crowd]:
        thread.join(timeout=60)
    shop.fetch("after", "/api/v1/products/")
    return shop.answers


def _shed_by(log: str) -> dict[str, int]:
    """How many refusals the server's access log attributes to each rule (JSON or console log lines)."""
    counts: dict[str, int] = {}
    for rule in re.findall(r"shed_by[\"=: ]+(\w+)", log):
        counts[rule] = counts.get(rule, 0) + 1
    return counts


def _status(answer: Any) -> Any:
    return answer.status_code if isinstance(answer, httpx.Response) else answer


def test_requests_queued_past_the_limit_are_shed_with_503_and_retry_after(
    app_server_factory: Callable[..., AppServer],
) -> None:
    answers = _overload(app_server_factory, max_queue_ms="200")

    assert _status(answers["hog"]) == 200  # the request that held the thread was admitted and finished
    for key in ("0 /api/v1/products/", "1 /api/v1/products/", "2 /api/v1/categories/"):
        response = answers[key]
        assert _status(response) == 503, (key, _status(response))
        assert response.headers["Retry-After"] == "1"
        assert response.headers["Content-Type"].startswith("application/problem+json")
        body = response.json()
        assert body["code"] == "overloaded" and body["retry_after"] == 1
        assert body["queued_ms"] >= 200  # what the worker measured, and why it refused
    page = answers["3 /"]
    assert _status(page) == 503 and page.headers["Retry-After"] == "1"
    assert page.headers["Content-Type"].startswith("text/html")
    # The liveness probe waited like everybody else, and was still answered: probes are never shed.
    assert _status(answers["4 /healthz"]) == 200
    # The queue drained: a request arriving after the overload is served.
    assert _status(answers["after"]) == 200


def test_twin_without_shedding_every_queued_request_waits_its_turn(
    app_server_factory: Callable[..., AppServer],
) -> None:
    answers = _overload(app_server_factory, max_queue_ms="0")

    assert {key: _status(answer) for key, answer in answers.items()} == dict.fromkeys(answers, 200)


def test_while_the_queue_stands_new_arrivals_are_refused_at_the_door(
    app_server_factory: Callable[..., AppServer],
) -> None:
    """One thread: hog 1 sleeps; hog 2 and one more request queue behind it. When hog 2 is taken after waiting,
    the queue stands (the other request still waits). Requests arriving now are refused by the refusal thread
    while hog 2 still holds the only request thread: they never joined the queue."""
    # The reaper off: it would refuse the queued request before hog 2 is taken, and the queue would not stand.
    shop = OneThread(app_server_factory, SHEDDING_MAX_QUEUE_MS="200", SHEDDING_REAP_QUEUE="false")
    start, answers = shop.start, shop.answers
    hog_1 = start("hog 1", "/api/_test/slow-query/?seconds=2")
    shop.wait_for_one_sleeping()
    hog_2 = start("hog 2", "/api/_test/slow-query/?seconds=3")
    time.sleep(0.3)  # hog 2 is accepted and queued first, the waiting request behind it
    waiting = start("waiting", "/api/v1/categories/")
    hog_1.join(timeout=30)
    shop.wait_for_one_sleeping()  # hog 2 now

    arrivals = [start(f"arrival {path}", path) for path in ("/api/v1/products/", "/api/v1/categories/", "/")]
    for thread in arrivals:
        thread.join(timeout=30)
    hog_2_still_sleeping = shop.sleeping() == 1
    for thread in (hog_2, waiting):
        thread.join(timeout=60)

    assert hog_2_still_sleeping, "the arrivals were answered only after the request thread was free"
    for path in ("/api/v1/products/", "/api/v1/categories/", "/"):
        response = answers[f"arrival {path}"]
        assert _status(response) == 503 and response.headers["Retry-After"] == "1", (path, _status(response))
    assert answers["arrival /api/v1/products/"].json()["code"] == "overloaded"
    assert _status(answers["waiting"]) == 503  # it waited behind hog 2's sleep: shed when taken
    assert _status(answers["hog 1"]) == _status(answers["hog 2"]) == 200
    # The access log names the rule that refused each one: three at the door, one by the thread that took it.
    assert _shed_by(shop.server.log()) == {"door": 3, "thread": 1}


def _arrivals_behind_a_long_queue(
    app_server_factory: Callable[..., AppServer], *, predict: str, predict_after: str = "1"
) -> dict[str, Any]:
    """One thread. A 2 s request first teaches the worker how long a request holds its thread (its moving
    average: 2 s / 8 = 250 ms); then a 3 s hog takes the thread and two requests arrive behind it. The first
    joins the queue; for the second, one request waiting x 250 ms is longer than the 200 ms limit.
    `predict_after` 1: the teacher is enough for the worker to predict (the default asks for more requests)."""
    shop = OneThread(
        app_server_factory,
        SHEDDING_MAX_QUEUE_MS="200",
        SHEDDING_PREDICT_WAIT=predict,
        SHEDDING_PREDICT_AFTER=predict_after,
        SHEDDING_REAP_QUEUE="false",  # the first arrival must still be waiting when the second one comes
    )
    shop.fetch("teacher", "/api/_test/slow-query/?seconds=2")
    hog = shop.start("hog", "/api/_test/slow-query/?seconds=3")
    shop.wait_for_one_sleeping()
    first = shop.start("first", "/api/v1/categories/")
    time.sleep(0.3)  # the first arrival is accepted and queued before the second
    second = shop.start("second", "/api/v1/products/")
    second.join(timeout=30)
    shop.answers["hog still sleeping"] = shop.sleeping() == 1
    for thread in (hog, first):
        thread.join(timeout=60)
    return shop.answers


def test_an_arrival_behind_a_queue_too_long_to_clear_in_time_is_refused_at_once(
    app_server_factory: Callable[..., AppServer],
) -> None:
    answers = _arrivals_behind_a_long_queue(app_server_factory, predict="true")

    assert _status(answers["teacher"]) == _status(answers["hog"]) == 200
    second = answers["second"]
    assert _status(second) == 503 and second.headers["Retry-After"] == "1"
    # Refused at the door: answered while the only request thread was still busy, after no wait in the queue.
    assert answers["hog still sleeping"], "the second arrival was answered only after the thread was free"
    assert second.json()["code"] == "overloaded" and second.json()["queued_ms"] < 200
    assert _status(answers["first"]) == 503  # it waited behind the 3 s hog: shed when taken, as before


def test_twin_without_the_prediction_the_arrival_waits_out_the_limit_before_it_is_refused(
    app_server_factory: Callable[..., AppServer],
) -> None:
    answers = _arrivals_behind_a_long_queue(app_server_factory, predict="false")

    second = answers["second"]
    assert _status(second) == 503
    assert not answers["hog still sleeping"]  # it was answered only once the hog had let go of the thread
    assert second.json()["queued_ms"] >= 200  # after waiting out the limit in the queue


def test_a_new_worker_does_not_predict_from_its_first_requests(
    app_server_factory: Callable[..., AppServer],
) -> None:
    """The same arrivals, with the worker asked to serve 32 requests before it predicts: the teacher alone is no
    pace, and the second arrival waits out the limit in the queue like the twin without prediction."""
    answers = _arrivals_behind_a_long_queue(app_server_factory, predict="true", predict_after="32")

    second = answers["second"]
    assert _status(second) == 503
    assert not answers["hog still sleeping"]  # not refused at the door: answered once the hog let go
    assert second.json()["queued_ms"] >= 200


def _late_arrival_behind_a_standing_queue(
    app_server_factory: Callable[..., AppServer],
    *,
    standing_queue_ms: str,
    standing_after_ms: str = "0",
    reap: str = "true",
) -> dict[str, Any]:
    """One thread, a 3 s limit. Three 1.5 s hogs (exempt from shedding) keep the queue from emptying for 4.5 s;
    a request arriving at 2.25 s, while the third hog still waits, is taken at 4.5 s: it waited 2.25 s, well
    within the limit, in a queue that had not been empty for 4.5 s, well past it."""
    shop = OneThread(
        app_server_factory,
        SHEDDING_MAX_QUEUE_MS="3000",
        SHEDDING_STANDING_QUEUE_MS=standing_queue_ms,
        SHEDDING_STANDING_AFTER_MS=standing_after_ms,
        SHEDDING_PREDICT_WAIT="false",  # this is about the queue's clock, not the prediction
        SHEDDING_REAP_QUEUE=reap,
    )
    hogs = [shop.start("hog 1", "/api/_test/slow-query/?seconds=1.5")]
    shop.wait_for_one_sleeping()
    hogs += [shop.start(f"hog {number}", "/api/_test/slow-query/?seconds=1.5") for number in (2, 3)]
    time.sleep(2.25)
    late = shop.start("late", "/api/v1/categories/")
    for thread in [*hogs, late]:
        thread.join(timeout=60)
    shop.fetch("after", "/api/v1/categories/")
    return shop.answers


def test_a_standing_queue_holds_a_request_to_the_short_wait(app_server_factory: Callable[..., AppServer]) -> None:
    answers = _late_arrival_behind_a_standing_queue(app_server_factory, standing_queue_ms="300")

    assert [_status(answers[f"hog {number}"]) for number in (1, 2, 3)] == [200, 200, 200]
    late = answers["late"]
    assert _status(late) == 503 and late.headers["Retry-After"] == "1"
    # Refused for waiting past the short target in a standing queue, not for the 3 s limit.
    assert 300 <= late.json()["queued_ms"] < 3000
    assert _status(answers["after"]) == 200  # the queue emptied: the long limit again


# The reaper is off in the next two: it would hand the queued hogs (exempt from shedding) to the refusal threads,
# which serve them, and the queue would empty before the late arrival comes.


def test_a_queue_stands_after_the_interval_when_one_is_set_and_the_arrival_is_refused_at_once(
    app_server_factory: Callable[..., AppServer],
) -> None:
    """SHEDDING_STANDING_AFTER_MS=1000: the queue, not empty since the second hog, stands from 1 s on (not from the
    3 s limit). The late arrival at 2.25 s is refused at the door, without joining the queue."""
    answers = _late_arrival_behind_a_standing_queue(
        app_server_factory, standing_queue_ms="300", standing_after_ms="1000", reap="false"
    )

    assert [_status(answers[f"hog {number}"]) for number in (1, 2, 3)] == [200, 200, 200]
    late = answers["late"]
    assert _status(late) == 503 and late.headers["Retry-After"] == "1"
    assert late.json()["queued_ms"] < 300  # refused on arrival, not after waiting out even the short target


def test_twin_with_the_interval_at_the_limit_the_arrival_joins_the_queue_and_waits(
    app_server_factory: Callable[..., AppServer],
) -> None:
    answers = _late_arrival_behind_a_standing_queue(app_server_factory, standing_queue_ms="300", reap="false")

    late = answers["late"]
    assert _status(late) == 503  # the queue stood from 3 s on: refused when a thread took it, at 4.5 s
    assert late.json()["queued_ms"] >= 2000


def test_twin_without_the_standing_rule_the_same_request_waits_and_is_served(
    app_server_factory: Callable[..., AppServer],
) -> None:
    answers = _late_arrival_behind_a_standing_queue(app_server_factory, standing_queue_ms="0")

    assert _status(answers["late"]) == 200  # 2.25 s in the queue, within the 3 s limit: the request waited it out


def _queued_behind_a_busy_thread(app_server_factory: Callable[..., AppServer], *, reap: str) -> dict[str, Any]:
    """One thread held 2 s by a hog; one request queued behind it with a 300 ms limit. When was it answered?"""
    shop = OneThread(
        app_server_factory,
        SHEDDING_MAX_QUEUE_MS="300",
        SHEDDING_PREDICT_WAIT="false",
        SHEDDING_STANDING_QUEUE_MS="0",
        SHEDDING_REAP_QUEUE=reap,
    )
    hog = shop.start("hog", "/api/_test/slow-query/?seconds=2")
    shop.wait_for_one_sleeping()
    shop.fetch("queued", "/api/v1/categories/")  # returns when it is answered
    shop.answers["hog still sleeping"] = shop.sleeping() == 1
    hog.join(timeout=60)
    shop.answers["shed_by"] = _shed_by(shop.server.log())
    return shop.answers


def test_a_request_that_waited_its_limit_is_refused_while_every_thread_is_still_busy(
    app_server_factory: Callable[..., AppServer],
) -> None:
    answers = _queued_behind_a_busy_thread(app_server_factory, reap="true")

    queued = answers["queued"]
    assert _status(queued) == 503 and queued.headers["Retry-After"] == "1"
    assert answers["hog still sleeping"], "the refusal waited for the busy thread"
    assert 300 <= queued.json()["queued_ms"] < 2000  # answered once it had waited the limit, not the hog's 2 s
    assert _status(answers["hog"]) == 200
    assert answers["shed_by"] == {"reaper": 1}


def test_twin_without_the_reaper_the_refusal_waits_for_a_free_thread(
    app_server_factory: Callable[..., AppServer],
) -> None:
    answers = _queued_behind_a_busy_thread(app_server_factory, reap="false")

    queued = answers["queued"]
    assert _status(queued) == 503  # refused all the same, but only once the hog let go of the thread
    assert not answers["hog still sleeping"]
    assert queued.json()["queued_ms"] >= 1500
    assert answers["shed_by"] == {"thread": 1}


# --- Behind a proxy: the wait counts from its X-Request-Start stamp (SHEDDING_TRUST_REQUEST_START) -------------


@pytest.mark.parametrize(
    ("header", "expected_s"),
    [("t=1800000000.000", 2.5), ("t=1800000000000", 2.5), ("1800000000000000", 2.5), ("t=1800000003.0", 0.0)],
)
def test_proxy_stamp_in_seconds_milliseconds_or_microseconds(header: str, expected_s: float) -> None:
    assert proxy_queue_wait_s(header, now=1_800_000_002.5) == pytest.approx(expected_s)


@pytest.mark.parametrize("header", ["t=", "t=abc", "t=1e400", "t=12", "t=nan"])
def test_a_malformed_or_implausible_stamp_is_ignored(header: str) -> None:
    assert proxy_queue_wait_s(header, now=1_800_000_002.5) is None


def test_a_trusted_proxy_stamp_sheds_an_old_request_and_admits_a_fresh_one(client: Client, settings: Any) -> None:
    settings.SHEDDING_MAX_QUEUE_MS = 500  # the production default (tests run with shedding off)
    settings.SHEDDING_TRUST_REQUEST_START = True
    shed = client.get("/api/v1/categories/", headers={"X-Request-Start": f"t={time.time() - 1.0:.3f}"})
    # Stamped now, just as the proxy passes it on (a stamp made earlier could age past the limit on a busy box).
    served = client.get("/api/v1/categories/", headers={"X-Request-Start": f"t={time.time():.3f}"})
    junk = client.get("/api/v1/categories/", headers={"X-Request-Start": "t=<script>"})

    assert shed.status_code == 503 and shed["Retry-After"] == "1" and shed.json()["code"] == "overloaded"
    assert served.status_code == 200
    assert junk.status_code == 200


def test_twin_an_untrusted_stamp_is_not_believed(client: Client, settings: Any) -> None:
    """Without a proxy that overwrites it, the header is the client's: an old stamp must not refuse anyone."""
    settings.SHEDDING_MAX_QUEUE_MS = 500
    settings.SHEDDING_TRUST_REQUEST_START = False

    response = client.get("/api/v1/categories/", headers={"X-Request-Start": f"t={time.time() - 60:.3f}"})

    assert response.status_code == 200


def test_a_refusal_is_one_access_log_line_not_an_error_for_sentry(
    client: Client, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Under overload thousands of requests a minute are refused. Django's request logger would log each as an
    error ("Service Unavailable"), and Sentry reports error records as events: an event storm on top of the
    overload. The refusal is logged once, by the access log, which Sentry does not report."""
    settings.SHEDDING_MAX_QUEUE_MS = 500
    settings.SHEDDING_TRUST_REQUEST_START = True

    with caplog.at_level("INFO"):
        shed = client.get("/api/v1/categories/", headers={"X-Request-Start": f"t={time.time() - 1.0:.3f}"})

    assert shed.status_code == 503
    assert [record.name for record in caplog.records if record.name == "django.request"] == []
    access = [record for record in caplog.records if record.name == "observability.access"]
    assert len(access) == 1 and access[0].status == 503  # type: ignore[attr-defined]
    assert access[0].shed_by == "thread"  # type: ignore[attr-defined]  # the proxy's stamp, judged in the thread
