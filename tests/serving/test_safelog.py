"""Log lines a request cannot forge, and causes that cannot flood the log (issue 13 item 5)."""

from __future__ import annotations

import logging
import sys

from tfserve_magic.serving.safelog import OneLineFormatter, Throttle, clean


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad\nFORGED LINE")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("t", logging.WARNING, __file__, 1, message, args, exc_info)


def test_control_characters_and_surrogates_are_escaped() -> None:
    assert clean("a\nb\rc\x1b[31m\x00\u2028\x85") == "a\\nb\\rc\\x1b[31m\\x00\\u2028\\x85"
    assert clean("lone \udfff") == "lone \\udfff"
    assert clean("café ✓") == "café ✓"


def test_a_record_is_one_line_and_a_traceback_cannot_start_a_line() -> None:
    formatter = OneLineFormatter("%(levelname)s %(message)s")
    line = formatter.format(record("GET %s -> 404", "/v1/models/\nW FAKE LOG LINE"))
    assert line == "WARNING GET /v1/models/\\nW FAKE LOG LINE -> 404"
    with_traceback = formatter.format(record("boom", exc=True)).splitlines()
    assert with_traceback[0] == "WARNING boom"
    assert all(line.startswith("    | ") for line in with_traceback[1:])
    assert with_traceback[-2:] == ["    | ValueError: bad", "    | FORGED LINE"]


def test_throttle_logs_a_cause_once_per_interval_and_forgets_the_oldest() -> None:
    throttle = Throttle(interval=3600, max_causes=2)
    assert throttle.allow("a") == (True, 0)
    assert [throttle.allow("a") for _ in range(3)] == [(False, 0)] * 3
    assert throttle.seen("a") and not throttle.seen("b")
    throttle.allow("b")
    throttle.allow("c")
    assert not throttle.seen("a") and throttle.seen("c")
    again = Throttle(interval=0.0)
    again.allow("x")
    assert again.allow("x") == (True, 0)
    now = [1000.0]
    counted = Throttle(interval=3600, clock=lambda: now[0])
    counted.allow("y")
    counted.allow("y")
    now[0] += 3599.0
    assert counted.allow("y") == (False, 0)  # still inside the interval
    now[0] += 1.0  # the interval has passed: it reports what it held back
    assert counted.allow("y") == (True, 2)
    assert counted.allow("y") == (False, 0)
