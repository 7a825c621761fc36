"""Sleeping until a request's intended time, precisely.

trio sleeps in ``epoll_wait``, whose timeout is whole milliseconds, and Python rounds it up: a
task that sleeps until 120 us from now wakes up to a millisecond late unless other I/O wakes
the loop first. For a load generator that is generator lag on every request sent after an idle
moment (a median lag of 0.5-0.7 ms at 1,000/s against nginx, measured), so on Linux
:class:`TimerfdSleeper` arms a ``timerfd`` (nanosecond resolution) and waits for it to become
readable through trio's own I/O wait, which is exact to the scheduler's reaction time.

The sleepers are made per task (:data:`SleeperFactory`), because a timerfd wakes one waiter.
:class:`TrioSleeper` is ``trio.sleep_until``, for virtual time (``MockClock``) and wherever
timerfd is missing; :func:`precise_sleepers` picks the best one available.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from typing import Protocol

import trio

__all__ = ["Sleeper", "SleeperFactory", "TimerfdSleeper", "TrioSleeper", "precise_sleepers"]


class Sleeper(Protocol):
    """Sleeps one task until a point of trio's clock."""

    async def sleep_until(self, deadline: float) -> None:
        """Return at ``deadline`` (trio's clock), or at once when it has passed."""
        ...

    def close(self) -> None:
        """Release what the sleeper holds."""
        ...


SleeperFactory = Callable[[], Sleeper]


class TrioSleeper:
    """``trio.sleep_until``: follows any trio clock, virtual ones included."""

    async def sleep_until(self, deadline: float) -> None:
        """Sleep with trio's timers (millisecond-grained on epoll)."""
        await trio.sleep_until(deadline)

    def close(self) -> None:
        """Nothing to release."""


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


_CLOCK_MONOTONIC = 1  # trio's system clock is perf_counter, which is CLOCK_MONOTONIC on Linux
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = 0o2000000


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # the C library the interpreter runs on
    if not hasattr(libc, "timerfd_create"):
        return None
    libc.timerfd_settime.argtypes = (
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(_Itimerspec),
        ctypes.c_void_p,
    )
    return libc


_LIBC = _libc()


class TimerfdSleeper:
    """Sleeps on a Linux ``timerfd``: wakes within microseconds of the deadline.

    The timer is armed relative to trio's clock reading (``deadline - now``), so the two clocks
    need only run at the same rate. Re-arming resets a pending expiry, so a sleep cut short by
    a cancellation leaves nothing behind for the next one.
    """

    __slots__ = ("_fd", "_spec")

    def __init__(self) -> None:
        if _LIBC is None:
            raise OSError("timerfd is not available on this platform")
        fd = _LIBC.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self._fd: int = fd
        self._spec = _Itimerspec()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until ``deadline``; a deadline that has passed is a checkpoint only."""
        remaining = deadline - trio.current_time()
        if remaining <= 0:
            await trio.lowlevel.checkpoint()
            return
        value = self._spec.it_value
        value.tv_sec = int(remaining)
        # At least 1 ns: an all-zero value would disarm the timer instead.
        value.tv_nsec = max(int((remaining - value.tv_sec) * 1e9), 1)
        assert _LIBC is not None  # checked when the sleeper was made
        if _LIBC.timerfd_settime(self._fd, 0, ctypes.byref(self._spec), None) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        while True:
            await trio.lowlevel.wait_readable(self._fd)
            try:
                os.read(self._fd, 8)  # the expiry count; reading it disarms readability
            except BlockingIOError:
                continue
            return

    def close(self) -> None:
        """Close the timerfd."""
        if self._fd >= 0:
            trio.lowlevel.notify_closing(self._fd)
            os.close(self._fd)
            self._fd = -1


def precise_sleepers() -> SleeperFactory:
    """Return the most precise sleeper factory this platform has (for trio's system clock).

    Never use it under a virtual clock: a timerfd runs on real time.
    """
    return TimerfdSleeper if _LIBC is not None else TrioSleeper
