"""An in-memory network: the same three methods as TCP, over in-process byte pipes.

Under ``trio.testing.MockClock`` this is what lets a whole mesh run in virtual time: no byte
leaves the process and no wall clock is consulted. A listener is a name in a table; a
connection is a pair of :class:`MemoryStream` ends whose server end is handed to the
listener's handler in the listener's own nursery (so a stopped listener takes its
connections with it).

Theory of operation. Each direction of a connection is a :class:`_Pipe`: a queue of chunks,
each stamped with the virtual time at which it *arrives* (sent at + the hop's one-way
latency), then an end-of-stream mark stamped the same way. A reader sees a chunk only once
its arrival time has come, so latency costs no task and no timer per chunk, and order is kept.
Sending never blocks (the pipe is unbounded, like ``trio.testing.memory_stream_pair``).

Machines. :meth:`MemoryNetwork.host` returns a :class:`MemoryHost`, one machine's view of the
network (a pod: an app and its sidecar). The connections a host opens or accepts belong to it,
which gives simulate mode its process faults:

- :meth:`MemoryHost.pause` is SIGSTOP: the host's ends stop reading and writing (data waits in
  the pipes), and connections to its listeners still open (the kernel would complete the
  handshake into the backlog) but get no answer, until :meth:`MemoryHost.resume`.
- :meth:`MemoryHost.crash` is what the kernel does after SIGKILL: every listener of the host
  disappears at once (connects are refused) and every connection it held is closed, so its
  peers read end-of-stream and their writes fail. Cancelling the host's tasks is the caller's
  job.

Latency (``latency_s``, 0 by default) applies between different hosts: a connect costs one
round trip, every chunk one way. Connections inside a host (a sidecar and its app on
localhost) have none. A connection opened with :meth:`MemoryNetwork.connect` comes from
outside every host (the load generator, the harness). ``jitter_s`` (0 by default) varies each
one-way trip by a uniform draw of up to that much either way, never below 0, as Toxiproxy's
latency toxic does, from the seeded ``rng``; a chunk never overtakes the one sent before it
(nor end-of-stream a chunk), so a late chunk delays those behind it, as on a TCP stream.

This module was built on ``trio.testing.memory_stream_pair``; it has its own pipe because the
latency stamp, a synchronous crash and the pause gate need to live inside the stream, and a
pipe that does only this costs a fraction of the CPU of the general-purpose one.
"""

from __future__ import annotations

import operator
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import trio
from trio import current_time
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from meshcore.errors import ConnectFailure
from meshcore.model import Endpoint
from meshcore.transport.network import ConnectionHandler, PeekableStream

__all__ = ["MemoryHost", "MemoryNetwork", "MemoryStream"]

_FIRST_PORT = 20000


class _Pipe:
    """One direction of a connection: chunks stamped with their arrival time, then EOF."""

    __slots__ = ("chunks", "eof_at", "reader_closed", "waiter")

    def __init__(self) -> None:
        self.chunks: deque[tuple[float, bytes]] = deque()
        self.eof_at: float | None = None  # when the end-of-stream arrives
        self.reader_closed = False  # the reading end is closed: writes fail
        self.waiter: trio.lowlevel.Task | None = None  # the reader, when it waits for data

    def wake(self) -> None:
        if self.waiter is not None:
            trio.lowlevel.reschedule(self.waiter)
            self.waiter = None


class MemoryStream(trio.abc.HalfCloseableStream, PeekableStream):
    """One end of an in-memory connection."""

    def __init__(
        self,
        incoming: _Pipe,
        outgoing: _Pipe,
        trip: Callable[[], float] | None,
        owner: MemoryHost | None,
    ) -> None:
        self._incoming = incoming
        self._outgoing = outgoing
        self._trip = trip  # draws one one-way trip's latency; None inside a host
        self._owner = owner
        self._closed = False
        self._receiving = False
        self._sending = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` for the peer; it arrives after the hop's latency."""
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            owner = self._owner
            if owner is not None and owner.paused:
                await owner.wait_resumed()  # a paused process writes nothing
            # A socket's send in trio: cancelled before, nothing is sent; once sent, the
            # schedule point after it is shielded. The reader is woken before this task
            # yields, so both run in the scheduler's next batch: one round per hop, not two.
            await checkpoint_if_cancelled()
            outgoing = self._outgoing
            if self._closed or outgoing.eof_at is not None:
                raise trio.ClosedResourceError("this end was closed for sending")
            if outgoing.reader_closed:
                raise trio.BrokenResourceError("the peer closed the connection")
            if data:
                outgoing.chunks.append((self._arrival(outgoing), bytes(data)))
                outgoing.wake()
            await cancel_shielded_checkpoint()
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        """Return at once: sending never blocks on an unbounded pipe."""
        if self._closed:
            raise trio.ClosedResourceError("this end is closed")
        await trio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        """Close the sending direction; the peer reads end-of-stream after the latency."""
        if self._closed:
            raise trio.ClosedResourceError("this end is closed")
        await trio.lowlevel.checkpoint()
        self._shut_outgoing()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return the bytes that have arrived (waiting for some), or b"" at end-of-stream."""
        if max_bytes is not None and operator.index(max_bytes) < 1:
            raise ValueError("max_bytes must be at least 1")
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving on this stream")
        self._receiving = True
        try:
            await checkpoint_if_cancelled()
            waited = False
            incoming = self._incoming
            while True:
                owner = self._owner
                if owner is not None and owner.paused:
                    await owner.wait_resumed()
                    waited = True
                    continue
                if self._closed:
                    raise trio.ClosedResourceError("this end was closed")
                now = current_time()
                chunks = incoming.chunks
                if chunks:
                    if chunks[0][0] <= now:
                        data = self._pop(chunks, now, max_bytes)
                        break
                    await trio.sleep_until(chunks[0][0])  # in flight: arrives then
                elif incoming.eof_at is not None:
                    if incoming.eof_at <= now:
                        data = b""
                        break
                    await trio.sleep_until(incoming.eof_at)
                else:
                    await self._wait_for_data(incoming)
                waited = True
            if not waited:  # every receive is a schedule point, as trio's streams are
                await cancel_shielded_checkpoint()
            return data
        finally:
            self._receiving = False

    def readable_now(self) -> bool:
        """Tell whether a read would return at once: arrived bytes or end-of-stream, or closed."""
        if self._closed:
            return True
        incoming = self._incoming
        now = trio.current_time()
        if incoming.chunks:
            return incoming.chunks[0][0] <= now
        return incoming.eof_at is not None and incoming.eof_at <= now

    @staticmethod
    def _pop(chunks: deque[tuple[float, bytes]], now: float, max_bytes: int | None) -> bytes:
        arrival, chunk = chunks[0]
        if len(chunks) == 1 and (max_bytes is None or len(chunk) <= max_bytes):
            chunks.popleft()  # the usual case: one message, read whole
            return chunk
        taken: list[bytes] = []
        size = 0
        while chunks and chunks[0][0] <= now:
            arrival, chunk = chunks[0]
            if max_bytes is not None and size + len(chunk) > max_bytes:
                room = max_bytes - size
                if room:
                    taken.append(chunk[:room])
                    chunks[0] = (arrival, chunk[room:])
                break
            taken.append(chunks.popleft()[1])
            size += len(chunk)
        return taken[0] if len(taken) == 1 else b"".join(taken)

    @staticmethod
    async def _wait_for_data(incoming: _Pipe) -> None:
        """Park until the writer (or a close) wakes this reader."""
        incoming.waiter = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            incoming.waiter = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def _arrival(self, outgoing: _Pipe) -> float:
        """Return when what is sent now arrives: after one trip, and not before what is queued."""
        arrival = current_time()
        if self._trip is not None:
            arrival += self._trip()
            if outgoing.chunks and arrival < outgoing.chunks[-1][0]:
                arrival = outgoing.chunks[-1][0]  # with jitter: no overtaking
        return arrival

    def _shut_outgoing(self) -> None:
        outgoing = self._outgoing
        if outgoing.eof_at is None:
            outgoing.eof_at = self._arrival(outgoing)
            outgoing.wake()

    def close(self) -> None:
        """Close this end at once: the peer reads end-of-stream, and its writes fail."""
        if self._closed:
            return
        self._closed = True
        self._shut_outgoing()
        self._incoming.reader_closed = True
        self._incoming.chunks.clear()
        self._incoming.wake()  # a task of ours waiting to read sees the close
        if self._owner is not None:
            self._owner.forget(self)

    async def aclose(self) -> None:
        """Close this end (see :meth:`close`)."""
        self.close()
        await trio.lowlevel.checkpoint()


@dataclass(frozen=True, slots=True)
class _Listener:
    handler: ConnectionHandler
    nursery: trio.Nursery
    host: MemoryHost | None


class MemoryNetwork:
    """Listeners and connections inside one process; ports are handed out from 20000 up.

    ``latency_s`` is the one-way latency between two hosts, and ``jitter_s`` how far a uniform
    draw from ``rng`` varies each trip either way (see the module's docstring).
    """

    def __init__(
        self, *, latency_s: float = 0.0, jitter_s: float = 0.0, rng: random.Random | None = None
    ) -> None:
        if latency_s < 0 or jitter_s < 0:
            raise ValueError(f"latency and jitter must be 0 or more, got {latency_s}, {jitter_s}")
        if jitter_s > 0 and rng is None:
            raise ValueError("jitter needs a seeded rng, to be reproducible")
        self.latency_s = latency_s
        self.jitter_s = jitter_s
        self._rng = rng
        self._listeners: dict[Endpoint, _Listener] = {}
        self._next_port = _FIRST_PORT

    def host(self, name: str) -> MemoryHost:
        """Return a new machine on this network, called ``name``."""
        return MemoryHost(self, name)

    async def connect(self, endpoint: Endpoint) -> trio.abc.Stream:
        """Connect from outside every host, or fail like a refused TCP connection."""
        return await self._connect(endpoint, None)

    async def _connect(self, endpoint: Endpoint, host: MemoryHost | None) -> MemoryStream:
        listener = self._listeners.get(endpoint)
        trip = self._trip(host, listener.host if listener is not None else None)
        if trip is not None:
            await trio.sleep(trip() + trip())  # SYN, SYN-ACK (or RST)
            listener = self._listeners.get(endpoint)
        else:
            await trio.lowlevel.checkpoint()
        if host is not None:
            await host.wait_resumed()
        if listener is None:
            raise ConnectFailure(f"connect to {endpoint} failed: connection refused")
        trip = self._trip(host, listener.host)
        to_server, to_client = _Pipe(), _Pipe()
        client = MemoryStream(to_client, to_server, trip, host)
        server = MemoryStream(to_server, to_client, trip, listener.host)
        if host is not None:
            host.adopt(client)
        if listener.host is not None:
            listener.host.adopt(server)
        listener.nursery.start_soon(listener.handler, server)
        return client

    def _trip(self, a: MemoryHost | None, b: MemoryHost | None) -> Callable[[], float] | None:
        """Return what draws a one-way trip's latency from ``a`` to ``b`` (None: no latency)."""
        if (a is not None and a is b) or (self.latency_s == 0 and self.jitter_s == 0):
            return None
        return self._jittered_trip if self.jitter_s else self._fixed_trip

    def _fixed_trip(self) -> float:
        return self.latency_s

    def _jittered_trip(self) -> float:
        assert self._rng is not None  # checked in __init__
        return max(0.0, self.latency_s + self._rng.uniform(-self.jitter_s, self.jitter_s))

    def allocate(self, host: str, count: int) -> list[Endpoint]:
        """Return ``count`` endpoints on ``host`` that no listener uses."""
        endpoints: list[Endpoint] = []
        while len(endpoints) < count:
            endpoint = Endpoint(host, self._next_port)
            self._next_port += 1
            if endpoint not in self._listeners:
                endpoints.append(endpoint)
        return endpoints

    async def serve(
        self,
        endpoint: Endpoint,
        handler: ConnectionHandler,
        *,
        task_status: trio.TaskStatus[Endpoint] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections on ``endpoint`` (port 0 picks a free one) until cancelled."""
        await self._serve(endpoint, handler, None, task_status)

    async def _serve(
        self,
        endpoint: Endpoint,
        handler: ConnectionHandler,
        host: MemoryHost | None,
        task_status: trio.TaskStatus[Endpoint],
    ) -> None:
        if endpoint.port == 0:
            [endpoint] = self.allocate(endpoint.host, 1)
        if endpoint in self._listeners:
            raise OSError(f"address already in use: {endpoint}")
        listener = None
        try:
            async with trio.open_nursery() as nursery:
                listener = _Listener(handler, nursery, host)
                self._listeners[endpoint] = listener
                task_status.started(endpoint)
                await trio.sleep_forever()
        finally:
            # A crash may have dropped this listener already, and a restart put another there.
            if listener is not None and self._listeners.get(endpoint) is listener:
                del self._listeners[endpoint]

    def drop_listeners(self, host: MemoryHost) -> None:
        """Remove every listener of ``host`` at once (its process is gone)."""
        for endpoint in [e for e, listener in self._listeners.items() if listener.host is host]:
            del self._listeners[endpoint]


class MemoryHost:
    """One machine on a :class:`MemoryNetwork`: a network of its own, that can pause or crash."""

    def __init__(self, network: MemoryNetwork, name: str) -> None:
        self.network = network
        self.name = name
        self.paused = False
        self._resumed = trio.Event()
        self._resumed.set()
        # Open ends, in the order they were opened (a dict: closing them is reproducible).
        self._ends: dict[MemoryStream, None] = {}

    async def connect(self, endpoint: Endpoint) -> trio.abc.Stream:
        """Connect from this host."""
        return await self.network._connect(endpoint, self)

    async def serve(
        self,
        endpoint: Endpoint,
        handler: ConnectionHandler,
        *,
        task_status: trio.TaskStatus[Endpoint] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``endpoint`` as this host."""
        await self.network._serve(endpoint, handler, self, task_status)

    def allocate(self, host: str, count: int) -> list[Endpoint]:
        """Return free endpoints of the network."""
        return self.network.allocate(host, count)

    def adopt(self, end: MemoryStream) -> None:
        """Count ``end`` among this host's connections."""
        self._ends[end] = None

    def forget(self, end: MemoryStream) -> None:
        """Forget a closed end."""
        self._ends.pop(end, None)

    def pause(self) -> None:
        """Stop every end of this host from reading or writing, until :meth:`resume`."""
        if not self.paused:
            self.paused = True
            self._resumed = trio.Event()

    def resume(self) -> None:
        """Let a paused host read and write again."""
        self.paused = False
        self._resumed.set()

    async def wait_resumed(self) -> None:
        """Return when the host is not paused."""
        if self.paused:
            await self._resumed.wait()

    def crash(self) -> None:
        """Drop this host's listeners and close all its connections, as a killed process's."""
        self.network.drop_listeners(self)
        self.resume()  # a killed process is no longer stopped
        for end in list(self._ends):
            end.close()
