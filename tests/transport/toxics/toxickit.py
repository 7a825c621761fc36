"""A connection pair under toxics, over the in-memory network, for the toxic tests."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from meshcore.layers.fault import FaultTable
from meshcore.model import Endpoint
from meshcore.policy.faults import FaultRule
from meshcore.policy.toxics import Toxic, ToxicSpec
from meshcore.transport.memory import MemoryNetwork
from meshcore.transport.toxic import ToxicNetwork

SERVER = Endpoint("backend", 8080)


def toxic_rule(toxic: Toxic, stream: str = "downstream", *, toxicity: float = 1.0) -> FaultRule:
    """Return an inbound rule carrying ``toxic`` (a fault on the service ``backend``)."""
    return FaultRule(name=toxic.type_name, toxic=ToxicSpec(toxic, stream, toxicity))


@dataclass
class Pair:
    """The caller's end and the server's end of one connection; the server's is under toxics."""

    client: trio.abc.Stream
    server: trio.abc.Stream
    table: FaultTable
    network: ToxicNetwork


@asynccontextmanager
async def toxic_pair(*rules: FaultRule, seed: int = 1) -> AsyncIterator[Pair]:
    """Yield a connection whose server end (an inbound listener) is under ``rules``."""
    memory = MemoryNetwork()
    table = FaultTable()
    for rule in rules:
        table.add(rule)
    async with trio.open_nursery() as nursery:
        network = ToxicNetwork(memory, table, rng=random.Random(seed), spawn=nursery.start_soon)
        table.on_change(network.changed)
        send, receive = trio.open_memory_channel[trio.abc.Stream](1)

        async def handler(stream: trio.abc.Stream) -> None:
            await send.send(stream)
            await trio.sleep_forever()

        await nursery.start(network.serve, SERVER, handler)
        client = await memory.connect(SERVER)
        server = await receive.receive()
        yield Pair(client, server, table, network)
        nursery.cancel_scope.cancel()


async def read_all(stream: trio.abc.Stream) -> list[tuple[float, bytes]]:
    """Read until end of stream; return each chunk with the instant it arrived."""
    chunks = []
    while data := await stream.receive_some():
        chunks.append((trio.current_time(), bytes(data)))
    return chunks
