"""Waking up at the intended time, precisely.

trio sleeps in ``epoll_wait``, whose timeout is whole milliseconds, and Python rounds it up: a
task that sleeps until 120 us from now wakes up to a millisecond late unless other I/O wakes
the loop first. For a load generator that is generator lag on every request sent after an idle
moment (a median lag of 0.5-0.7 ms at 1,000/s against nginx, measured). Two remedies:

- :class:`PreciseClock`, a trio clock (``trio.run(..., clock=precise_clock())``) that makes
  every trio timer of the run precise: when the next deadline is near it waits for trio's
  epoll file descriptor itself, with ``ppoll`` and a nanosecond timeout, so the loop wakes on
  the first I/O event or at the deadline, whichever comes first. A sleep on the clock
  (:meth:`PreciseClock.sleep_until`) is a heap entry: no system call, no file descriptor
  and no cancel scope per sleep. This is what ``meshchaos load`` runs on (a profile of one
  worker at 6,000/s put a quarter of its CPU in per-request timerfds).
- :class:`TimerfdSleeper`, for runs on trio's own clock: one sleep arms a Linux ``timerfd``
  (nanoseconds) and waits for it through trio's I/O wait. It costs a few system calls and an
  epoll registration per sleep. The sleepers are made per task (:data:`SleeperFactory`),
  because a timerfd wakes one waiter.

:class:`TrioSleeper` is ``trio.sleep_until``: exact in virtual time (``MockClock``) and under a
:class:`PreciseClock`. :func:`precise_sleepers` picks the sleeper that is precise in the
calling run.
"""

from __future__ import annotations

import ctypes
import heapq
import math
import os
import select
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

import trio

__all__ = [
    "ClockSleeper",
    "PreciseClock",
    "Sleeper",
    "SleeperFactory",
    "TimerfdSleeper",
    "TrioSleeper",
    "precise_clock",
    "precise_sleepers",
]


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


class _Pollfd(ctypes.Structure):
    _fields_ = (("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short))


_CLOCK_MONOTONIC = 1  # trio's system clock is perf_counter, which is CLOCK_MONOTONIC on Linux
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = 0o2000000
_PR_SET_TIMERSLACK = 29


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
    libc.ppoll.argtypes = (
        ctypes.POINTER(_Pollfd),
        ctypes.c_ulong,
        ctypes.POINTER(_Timespec),
        ctypes.c_void_p,
    )
    libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong)
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


# Farther than this from the next deadline, the clock lets epoll wait (cheaper, and a long
# ppoll would be late by its own slack, 0.1 % of the timeout).
_FINE_S = 0.005
# epoll wakes up to 1 ms late (Python rounds its timeout up to whole milliseconds), plus the
# kernel's slack (50 us, or 0.1 % of the timeout): the clock asks epoll for its wake-up this
# much earlier, and then ppoll waits for the rest.
_EARLY_S = 0.0012
# A sleeping process runs again some 50 us after its timeout on the development VM: the
# clock's own wait ends this much before the deadline, and the loop polls for the rest (a
# median lag of 0.045 ms instead of 0.10 at 1,000/s, measured; the CPU it burns, at most
# this much per wake-up, was lost in the noise of what waking up costs).
_SPIN_S = 0.00005


class PreciseClock(trio.abc.Clock):
    """trio's system clock, with its own precise and cheap timers for :meth:`sleep_until`.

    Theory of operation. trio asks its clock how long to wait for I/O when no task is runnable
    (:meth:`deadline_to_sleep_time`). Far from the next deadline (trio's or one of this
    clock's timers) the clock answers as trio's own does, minus a margin that covers epoll's
    rounding. Near it, it waits itself: ``ppoll`` on trio's epoll file descriptor with a
    nanosecond timeout returns as soon as any I/O trio waits for is ready, or at the deadline;
    the clock then answers 0 and trio collects the events without blocking. The last 50 us
    before a deadline are not waited but polled (the clock answers 0 at once): waking up a
    sleeping process takes about that long. Right after every I/O wait, busy loop or not, the
    clock's instrument (``after_io_wait``) reschedules the tasks whose timer is due, as trio
    reschedules tasks whose I/O is ready.

    :meth:`sleep_until` is a heap entry and a park (``wait_task_rescheduled``): no system
    call and no cancel scope. ``trio.sleep_until`` works too and is as precise, but its
    cancel scope and the ``Cancelled`` exception that ends it cost about 25 us of CPU per
    sleep, which one load worker at 8,000/s cannot spare. The thread's timer slack is lowered
    to 1 ns (``prctl``) when the run starts, so the kernel does not defer timeouts by its
    default 50 us.

    Use it only for a plain ``trio.run`` on Linux (see :func:`precise_clock`): it reads trio's
    epoll descriptor from trio's run state, and blocking in the clock would hold up a host
    loop in guest mode. Times are ``time.perf_counter()``, the clock trio's own uses.
    """

    __slots__ = ("_pollfd", "_timeout", "_timers")

    def __init__(self) -> None:
        if _LIBC is None:
            raise OSError("ppoll is not available on this platform")
        self._pollfd = _Pollfd(-1, select.POLLIN, 0)
        self._timeout = _Timespec()
        self._timers = _Timers()

    def start_clock(self) -> None:
        """Find the run's epoll descriptor, lower the timer slack, start the timers."""
        epoll = _current_epoll()
        if epoll is None:
            raise RuntimeError("PreciseClock needs trio's epoll I/O manager")
        self._pollfd.fd = epoll.fileno()
        assert _LIBC is not None  # checked when the clock was made
        _LIBC.prctl(_PR_SET_TIMERSLACK, 1)  # 0 would restore the default, not set zero
        trio.lowlevel.add_instrument(self._timers)

    def current_time(self) -> float:
        """Return ``time.perf_counter()``."""
        return time.perf_counter()

    def deadline_to_sleep_time(self, deadline: float) -> float:
        """Return how long epoll may wait: up to the deadline, having waited the fine part."""
        remaining = min(deadline, self._timers.next_deadline()) - time.perf_counter()
        if remaining <= _SPIN_S:
            return 0.0
        if remaining > _FINE_S:
            # Early by the rounding and the slack; the last milliseconds are waited below.
            return remaining * 0.998 - _EARLY_S
        timeout = self._timeout
        timeout.tv_sec = 0
        timeout.tv_nsec = int((remaining - _SPIN_S) * 1e9)
        assert _LIBC is not None
        # Ready I/O, the deadline, or a signal (EINTR) all end the wait the same way: trio
        # looks at what there is.
        _LIBC.ppoll(ctypes.byref(self._pollfd), 1, ctypes.byref(timeout), None)
        return 0.0

    async def sleep_until(self, deadline: float) -> None:
        """Return at ``deadline`` (a checkpoint, and only that when it has passed)."""
        await self._timers.sleep_until(deadline)

    def next_timer(self) -> float:
        """Return the earliest deadline of a task in :meth:`sleep_until` (infinity: none)."""
        return self._timers.next_deadline()


class _Timers(trio.abc.Instrument):
    """A heap of parked tasks and their deadlines, woken after each of trio's I/O waits.

    A cancelled sleep leaves its entry in the heap with no task (removing it from the middle
    would cost more); it is skipped when it comes to the top.
    """

    def __init__(self) -> None:
        self._heap: list[list[Any]] = []  # [deadline, sequence, task or None]
        self._sequence = 0  # breaks ties first come, first served (tasks do not compare)

    def next_deadline(self) -> float:
        """Return the earliest deadline of a parked task (infinity without one)."""
        heap = self._heap
        while heap:
            if heap[0][2] is not None:
                return float(heap[0][0])
            heapq.heappop(heap)
        return math.inf

    async def sleep_until(self, deadline: float) -> None:
        """Park the calling task until ``deadline``."""
        if deadline <= time.perf_counter():
            await trio.lowlevel.checkpoint()
            return
        await trio.lowlevel.checkpoint_if_cancelled()
        self._sequence += 1
        entry: list[Any] = [deadline, self._sequence, trio.lowlevel.current_task()]
        heapq.heappush(self._heap, entry)

        def abort(_: Any) -> trio.lowlevel.Abort:
            entry[2] = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def after_io_wait(self, timeout: float) -> None:
        """Reschedule every task whose deadline has come."""
        heap = self._heap
        if not heap:
            return
        now = time.perf_counter()
        while heap and heap[0][0] <= now:
            task = heapq.heappop(heap)[2]
            if task is not None:
                trio.lowlevel.reschedule(task)


class ClockSleeper:
    """Sleeps on the :class:`PreciseClock` of the calling run (one serves every task)."""

    __slots__ = ("_clock",)

    def __init__(self, clock: PreciseClock) -> None:
        self._clock = clock

    async def sleep_until(self, deadline: float) -> None:
        """Sleep on the clock's timers."""
        await self._clock.sleep_until(deadline)

    def close(self) -> None:
        """Nothing to release."""


def _current_epoll() -> select.epoll | None:
    """Return the epoll object of the calling trio run (trio keeps it private), if it has one."""
    runner = getattr(getattr(trio._core._run, "GLOBAL_RUN_CONTEXT", None), "runner", None)
    epoll = getattr(getattr(runner, "io_manager", None), "_epoll", None)
    return epoll if isinstance(epoll, select.epoll) else None


def precise_clock() -> trio.abc.Clock | None:
    """Return a :class:`PreciseClock` for ``trio.run(..., clock=...)``, or None without one.

    None (trio's own clock) where the platform has no ppoll or trio does not run on epoll.
    """
    if _LIBC is None or not hasattr(select, "epoll"):
        return None
    return PreciseClock()


def precise_sleepers() -> SleeperFactory:
    """Return the most precise sleeper factory for the calling trio run.

    A :class:`ClockSleeper` under a :class:`PreciseClock`, else :class:`TimerfdSleeper` where
    Linux has one. Never use it under a virtual clock: a timerfd runs on real time.
    """
    try:
        clock = trio.lowlevel.current_clock()
    except RuntimeError:  # outside a run: the sleepers will serve a run on trio's own clock
        clock = None
    if isinstance(clock, PreciseClock):
        sleeper = ClockSleeper(clock)
        return lambda: sleeper
    return TimerfdSleeper if _LIBC is not None else TrioSleeper
