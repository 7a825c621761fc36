"""Connection-level faults: Toxiproxy's toxics and partitions, as a network that wraps another.

:class:`ToxicNetwork` wraps any :class:`~meshcore.transport.network.Network` (TCP or memory),
as :class:`~meshcore.transport.tls.TlsNetwork` does, and sits *under* TLS so that toxics see
the bytes on the wire, as Toxiproxy does. A sidecar wraps its inbound listener with it (faults
on a service or replica: ``upstream`` is what the caller sends, ``downstream`` what it gets)
and its connections to mesh destinations (faults on an edge: ``upstream`` is what goes to the
destination).

Theory of operation. Every wrapped connection is a :class:`ToxicStream`. The rules come from
the sidecar's fault table at each step, so a toxic added or removed at runtime acts on the
connections already open (Toxiproxy adds a toxic to every link). Whether a toxic acts on a
connection is drawn once per connection and toxic, with ``toxicity``, from the seeded RNG.

- Received bytes pass the chain when the reader asks for them: each chunk is stamped with the
  time it was read, run through :func:`~meshcore.policy.toxics.run_chain`, and handed out when
  its step's instant comes.
  While no rule at all applies to the connection, a read goes straight to the inner stream,
  without the cancel scope a waiting reader otherwise sits in (a scope per read was a few
  percent of a sidecar's CPU). A change of the rules during such a read marks it: what it
  returns then passes the new rules as if it had just been read (held, if a ``timeout`` toxic
  now holds the direction), and a ``timeout`` toxic that would close the connection before
  anything arrives gets a timer that does so.
- Sent bytes go, while no toxic acts on that direction, straight to the inner stream. Once one
  does, a pump task (in the sidecar's nursery) takes over that direction for the rest of the
  connection: ``send_all`` stamps and queues the bytes and returns, and the pump delivers each
  step at its instant, so chunks in flight overlap as in Toxiproxy's buffered stubs.
- A ``timeout`` toxic holds a direction (nothing is read or delivered) and closes the
  connection ``timeout`` after it met it.
- A partition refuses new connections (a connect fails like a refused one; an accepted one is
  reset at once) and resets the open ones when it is added.

Table changes reach waiting readers and the pumps through :meth:`ToxicNetwork.changed`, which
the sidecar registers with its fault table.
"""

from __future__ import annotations

import random
import socket
import struct
import weakref
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import trio

from meshcore.errors import ConnectFailure
from meshcore.model import Endpoint
from meshcore.policy.faults import FaultRule
from meshcore.policy.toxics import (
    CLOSE,
    DATA,
    EOF,
    RESET,
    Step,
    TimeoutToxic,
    Toxic,
    ToxicState,
    run_chain,
)
from meshcore.transport.leansocket import LeanSocketStream
from meshcore.transport.network import ConnectionHandler, Network, PeekableStream, readable_now

__all__ = ["ConnectionFaults", "ToxicNetwork", "ToxicStream"]


class ConnectionFaults(Protocol):
    """Where the connection-level rules come from (the sidecar's fault table)."""

    def connection_rules(self, destination: str | None) -> tuple[FaultRule, ...]:
        """Return the toxics and partitions on ``destination``'s connections (None: inbound)."""
        ...


def _reset(stream: trio.abc.Stream) -> None:
    """Close ``stream`` at once; on TCP with RST (SO_LINGER 0), as Toxiproxy's reset_peer."""
    if isinstance(stream, LeanSocketStream):
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    close = getattr(stream, "close", None)
    if callable(close):
        close()  # the memory network and the TCP stream close synchronously


class ToxicStream(trio.abc.Stream, PeekableStream):
    """One connection under the toxics of its side (see the module's docstring)."""

    def __init__(
        self, inner: trio.abc.Stream, network: ToxicNetwork, destination: str | None
    ) -> None:
        self._inner = inner
        self._network = network
        self._destination = destination
        server = destination is None
        self._receive_stream = "upstream" if server else "downstream"
        self._send_stream = "downstream" if server else "upstream"
        # Per (rule, direction): does the toxic act here (drawn once), and its state.
        self._links: dict[tuple[str, str], tuple[bool, ToxicState]] = {}
        self._met: dict[tuple[str, str], float] = {}  # when a timeout toxic met us
        self._ready: deque[Step] = deque()  # received steps waiting for their instant
        self._receive_scope: trio.CancelScope | None = None
        self._direct = False  # a read is in the inner stream without a scope (no rules then)
        self._changed_during_direct = False
        self._unread: bytes | None = None  # what a direct read got when the rules changed
        self._received_eof = False
        self._outbox: deque[Step] | None = None  # set while the send pump runs
        self._wake = trio.Event()
        self._closed = False  # closed by our user
        self._dead: str | None = None  # closed or reset by a toxic or a partition

    # --- the rules ------------------------------------------------------------------------

    def _rules(self) -> tuple[FaultRule, ...]:
        return self._network.faults.connection_rules(self._destination)

    def partitioned(self) -> bool:
        """Tell whether a partition now cuts this connection."""
        return any(rule.partition for rule in self._rules())

    def _chain(self, stream: str) -> tuple[list[tuple[Toxic, ToxicState]], bool, float | None]:
        """Return the toxics acting on ``stream``, whether one holds it, and when to close."""
        chain: list[tuple[Toxic, ToxicState]] = []
        held = False
        close_at: float | None = None
        for rule in self._rules():
            spec = rule.toxic
            if spec is None or spec.stream != stream:
                continue
            key = (rule.name, stream)
            link = self._links.get(key)
            if link is None:
                acts = self._network.rng.random() < spec.toxicity
                link = self._links[key] = (acts, ToxicState())
                if acts:
                    self._network.counters[f"toxic.{spec.type}.connections"] += 1
            acts, state = link
            if not acts:
                continue
            toxic = spec.toxic
            if isinstance(toxic, TimeoutToxic):
                held = True
                met = self._met.setdefault(key, trio.current_time())
                at = toxic.close_at(met)
                if at is not None:
                    close_at = at if close_at is None else min(close_at, at)
            else:
                chain.append((toxic, state))
        return chain, held, close_at

    def changed(self) -> None:
        """Re-read the rules: wake a waiting reader and the pump; obey a new partition."""
        if self._dead is None and self.partitioned():
            self._network.counters["partition.connections_reset"] += 1
            self._die(RESET)
        if self._receive_scope is not None:
            self._receive_scope.cancel()
        if self._direct:
            self._changed_during_direct = True
            if self._dead is None:
                _, held, close_at = self._chain(self._receive_stream)  # met: now
                if held and close_at is not None:
                    self._network.spawn(lambda: self._close_if_held(close_at))
        self._wake.set()

    async def _close_if_held(self, close_at: float) -> None:
        """Close at ``close_at`` if a timeout toxic still holds the direct reader's direction."""
        await trio.sleep_until(close_at)
        if self._dead is None and self._direct:
            _, held, at = self._chain(self._receive_stream)
            if held and at is not None and at <= trio.current_time():
                self._die(CLOSE)

    async def _wait_change(self, deadline: float | None) -> bool:
        """Wait for a table change or ``deadline``; tell whether the deadline passed."""
        self._wake = trio.Event()
        with trio.move_on_at(float("inf") if deadline is None else deadline):
            await self._wake.wait()
            return False
        return True

    def _die(self, how: str) -> None:
        self._dead = how
        if how == RESET:
            _reset(self._inner)
        else:
            close = getattr(self._inner, "close", None)
            if callable(close):
                close()
        self._wake.set()
        if self._receive_scope is not None:
            self._receive_scope.cancel()

    def _check_alive(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this stream was closed")
        if self._dead is not None:
            raise trio.BrokenResourceError(f"the connection was {self._dead} by a fault")

    # --- receiving ------------------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Return the next bytes the toxics let through, when they let them."""
        if (self._dead is None and not self._closed and not self._received_eof
                and not self._ready and self._unread is None and not self._rules()):  # fmt: skip
            # The direct read, inline: a helper coroutine here cost a frame per read on every
            # connection of a sidecar, toxics or not.
            self._direct = True
            self._changed_during_direct = False
            try:
                direct: bytes | bytearray | None = await self._inner.receive_some(max_bytes)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                if self._dead is None and not self._closed:
                    raise
                direct = None  # a fault or our user closed it: the long way says how
            finally:
                self._direct = False
            if direct is not None:
                if not self._changed_during_direct:
                    self._received_eof = not direct
                    return direct
                self._unread = bytes(direct)  # read after the change: the new rules decide
        while True:
            self._check_alive_for_receive()
            if self._ready:
                step = self._ready[0]
                now = trio.current_time()
                if step.at > now:
                    await trio.sleep_until(step.at)
                    continue
                return await self._deliver(step, max_bytes)
            if self._received_eof or self._dead == CLOSE:
                await trio.lowlevel.checkpoint()
                return b""
            chain, held, close_at = self._chain(self._receive_stream)
            if held:
                if await self._wait_change(close_at):
                    self._die(CLOSE)
                continue
            data: bytes | bytearray
            if self._unread is not None:
                data, self._unread = self._unread, None
            else:
                with trio.CancelScope() as scope:
                    self._receive_scope = scope
                    data = await self._inner.receive_some(max_bytes)
                self._receive_scope = None
                if scope.cancelled_caught:
                    continue
            if not chain and not self._ready:
                self._received_eof = not data
                return data
            kind = DATA if data else EOF
            self._ready.extend(run_chain(chain, Step(trio.current_time(), bytes(data), kind),
                                         self._network.rng))  # fmt: skip

    def _check_alive_for_receive(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this stream was closed")
        if self._dead == RESET:
            raise trio.BrokenResourceError("the connection was reset by a fault")

    async def _deliver(self, step: Step, max_bytes: int | None) -> bytes:
        await trio.lowlevel.checkpoint()
        if step.kind == DATA:
            if max_bytes is not None and len(step.data) > max_bytes:
                self._ready[0] = Step(step.at, step.data[max_bytes:])
                return step.data[:max_bytes]
            self._ready.popleft()
            return step.data
        self._ready.clear()
        if step.kind == EOF:
            self._received_eof = True
            return b""
        self._die(step.kind)
        if step.kind == RESET:
            raise trio.BrokenResourceError("the connection was reset by a fault")
        return b""

    def readable_now(self) -> bool:
        """Tell whether a read would return at once (or would learn the connection is dead).

        Steps the toxics still hold count: something did arrive. So does anything readable
        on the inner stream, even where a toxic would delay it.
        """
        if self._closed or self._dead is not None or self._received_eof or self._ready:
            return True
        if self._unread is not None:
            return True
        return readable_now(self._inner)

    # --- sending --------------------------------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` through the toxics of the sending direction."""
        self._check_alive()
        if self._outbox is None:
            if not self._rules():  # the common case, without building a chain
                await self._inner.send_all(data)
                return
            chain, held, _ = self._chain(self._send_stream)
            if not chain and not held:
                await self._inner.send_all(data)
                return
            self._start_pump()
        assert self._outbox is not None
        self._outbox.append(Step(trio.current_time(), bytes(data)))
        self._wake.set()
        await trio.lowlevel.checkpoint()

    def _start_pump(self) -> None:
        self._outbox = deque()
        self._network.spawn(self._pump)

    async def _pump(self) -> None:
        """Deliver the sending direction's steps at their instants, for the connection's life."""
        outbox = self._outbox
        assert outbox is not None
        try:
            while self._dead is None:
                chain, held, close_at = self._chain(self._send_stream)
                if held or not outbox:
                    if await self._wait_change(close_at if held else None):
                        self._die(CLOSE)
                    continue
                for step in run_chain(chain, outbox.popleft(), self._network.rng):
                    await trio.sleep_until(step.at)
                    if step.kind == DATA:
                        await self._inner.send_all(step.data)
                    elif step.kind == EOF:
                        self._die(CLOSE)  # our user closed: the close goes out now
                    else:
                        self._die(step.kind)
                    if self._dead is not None:
                        break
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._die(RESET)

    async def wait_send_all_might_not_block(self) -> None:
        """Return when the inner stream could take bytes."""
        self._check_alive()
        await self._inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Close; with the sending direction under toxics, the close follows the queued bytes."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        if self._receive_scope is not None:
            self._receive_scope.cancel()
        if self._dead is None and self._outbox is None:
            chain, held, _ = self._chain(self._send_stream)
            if chain or held:
                self._start_pump()
        if self._dead is None and self._outbox is not None:
            self._outbox.append(Step(trio.current_time(), kind=EOF))
            self._wake.set()
            await trio.lowlevel.checkpoint()
            return
        self._network.forget(self)
        await trio.aclose_forcefully(self._inner)


class ToxicNetwork:
    """A network whose connections pass the connection-level faults of ``faults``.

    ``destination_of`` names the destination service of an endpoint (connections to other
    endpoints, such as the local app, are not wrapped); ``spawn`` runs the send pumps in a
    nursery that outlives the connections; ``counters`` counts what the faults did.
    """

    def __init__(
        self,
        inner: Network,
        faults: ConnectionFaults,
        *,
        rng: random.Random,
        spawn: Callable[[Callable[[], Awaitable[None]]], None],
        destination_of: Callable[[Endpoint], str | None] = lambda endpoint: None,
        counters: Counter[str] | None = None,
    ) -> None:
        self._inner = inner
        self.faults = faults
        self.rng = rng
        self.spawn = spawn
        self._destination_of = destination_of
        self.counters: Counter[str] = Counter() if counters is None else counters
        self._streams: weakref.WeakSet[ToxicStream] = weakref.WeakSet()

    def changed(self) -> None:
        """Tell every open connection that the rules changed."""
        for stream in list(self._streams):
            stream.changed()

    def forget(self, stream: ToxicStream) -> None:
        """Stop telling ``stream`` about changes (it is closed)."""
        self._streams.discard(stream)

    def streams(self) -> Sequence[ToxicStream]:
        """Return the open wrapped connections."""
        return list(self._streams)

    def allocate(self, host: str, count: int) -> list[Endpoint]:
        """Return free endpoints of the inner network."""
        return self._inner.allocate(host, count)

    def _wrap(self, stream: trio.abc.Stream, destination: str | None) -> ToxicStream:
        wrapped = ToxicStream(stream, self, destination)
        self._streams.add(wrapped)
        return wrapped

    async def connect(self, endpoint: Endpoint) -> trio.abc.Stream:
        """Connect, unless a partition cuts the destination (then fail like a refused connect)."""
        destination = self._destination_of(endpoint)
        if destination is None:
            return await self._inner.connect(endpoint)
        if any(rule.partition for rule in self.faults.connection_rules(destination)):
            await trio.lowlevel.checkpoint()
            self.counters["partition.connects_refused"] += 1
            raise ConnectFailure(f"connect to {endpoint} failed: partitioned from {destination}")
        return self._wrap(await self._inner.connect(endpoint), destination)

    async def serve(
        self,
        endpoint: Endpoint,
        handler: ConnectionHandler,
        *,
        task_status: trio.TaskStatus[Endpoint] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve ``endpoint``; under a partition, accepted connections are reset at once."""

        async def accept(raw: trio.abc.Stream) -> None:
            stream = self._wrap(raw, None)
            if stream.partitioned():
                self.counters["partition.connections_refused"] += 1
                self.forget(stream)
                _reset(raw)
                await trio.lowlevel.checkpoint()
                return
            try:
                await handler(stream)
            finally:
                self.forget(stream)

        await self._inner.serve(endpoint, accept, task_status=task_status)
