"""The standalone sidecar's access log: JSON lines written in batches, none lost on stopping."""

from __future__ import annotations

import io
import json

import trio

from meshcore.accesslog import FLUSH_INTERVAL_S, MAX_BUFFERED_LINES, JsonLinesLog


async def test_lines_are_written_on_the_timer_and_when_stopping(
    autojump_clock: trio.abc.Clock,
) -> None:
    out = io.StringIO()
    log = JsonLinesLog(out)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(log.run)
        log({"path": "/a", "response_code": 200})
        assert out.getvalue() == ""  # buffered
        await trio.sleep(FLUSH_INTERVAL_S * 0.9)
        assert out.getvalue() == ""  # not yet: the timer fires at FLUSH_INTERVAL_S
        # Past the timer, not on it: two tasks waking at one instant run in either order.
        await trio.sleep(FLUSH_INTERVAL_S * 0.2)
        assert out.getvalue() == '{"path":"/a","response_code":200}\n'
        log({"path": "/b"})
        nursery.cancel_scope.cancel()  # a SIGTERM or SIGINT shutdown cancels the task
    assert [json.loads(line)["path"] for line in out.getvalue().splitlines()] == ["/a", "/b"]


def test_a_full_buffer_is_written_at_once() -> None:
    out = io.StringIO()
    log = JsonLinesLog(out)
    for number in range(MAX_BUFFERED_LINES - 1):
        log({"n": number})
    assert out.getvalue() == ""
    log({"n": MAX_BUFFERED_LINES - 1})
    assert len(out.getvalue().splitlines()) == MAX_BUFFERED_LINES
    log.flush()
    log.flush()  # nothing queued: writes nothing
    assert len(out.getvalue().splitlines()) == MAX_BUFFERED_LINES
