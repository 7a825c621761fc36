"""The outermost layer: request ids, metrics and the access log.

It sits first in both stacks so that it sees every request, including those that later
layers answer by themselves (404 ``NR``, 503 ``UH``, injected aborts), and so that the
duration it records is what the caller experienced.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import trio

from meshcore.layers.base import Service
from meshcore.model import Headers, Request, Response
from meshcore.telemetry import RequestRecord, SidecarTelemetry
from meshcore.trace import RequestTrace

__all__ = ["SOURCE_HEADER", "AccessLogSink", "TelemetryLayer"]

# The calling workload's name, added by the outbound sidecar. It stands in for Istio's peer
# metadata exchange on plain-text connections; with mTLS the certificate says who called.
SOURCE_HEADER = "x-meshchaos-source"

AccessLogSink = Callable[[dict[str, Any]], None]

# RFC 4122 version 4: the variant bits (10) and the version nibble (4) of a random UUID.
_UUID_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID_V4 = (0x8000 << 48) | (0x4000 << 64)


class TelemetryLayer:
    """Ensures ``x-request-id``, records metrics and writes one access-log entry per request.

    ``reporter`` is ``"source"`` for the outbound stack and ``"destination"`` for the inbound
    one, as in Istio's metric labels. Request ids come from the sidecar's seeded RNG, so a
    simulated run is reproducible down to its ids. ``connection_security_policy`` is
    ``mutual_tls`` when the request came over mTLS (inbound) or the sidecar originates mTLS
    (outbound, ``mtls``), else ``none``.
    """

    def __init__(
        self,
        inner: Service,
        *,
        workload: str,
        reporter: str,
        telemetry: SidecarTelemetry,
        access_log: AccessLogSink | None,
        rng: random.Random,
        mtls: bool = False,
    ) -> None:
        self.inner = inner
        self._workload = workload
        self._reporter = reporter
        self._telemetry = telemetry
        self._access_log = access_log
        self._rng = rng
        self._mtls = mtls
        self._source_header = (SOURCE_HEADER, workload)  # outbound: who calls, on every request

    async def __call__(self, request: Request) -> Response:
        """Pass ``request`` on and account for it."""
        headers = request.headers
        request_id = request.header("x-request-id")
        added: Headers = ()
        if request_id is None:
            request_id = _request_id(self._rng)
            added = (("x-request-id", request_id),)
        peer = request.peer
        trace: RequestTrace | None = None
        if self._reporter == "source":
            # The decision trace: the layers below write each try and why it was (not) retried.
            trace = RequestTrace()
            if request.header(SOURCE_HEADER) is not None:  # the app sent one: ours replaces it
                headers = tuple(h for h in headers if h[0] != SOURCE_HEADER)
            headers = (*headers, *added, self._source_header)
            request = request.replace(headers=headers, trace=trace)  # one copy for both
            source = self._workload
            mtls = self._mtls
        else:
            if added:
                request = request.replace(headers=(*headers, *added))
            if peer is not None:
                source = peer.workload  # the verified certificate, not a header, says who called
                mtls = True
            else:
                source = request.header(SOURCE_HEADER) or "unknown"
                mtls = False
        security = "mutual_tls" if mtls else "none"
        started = trio.current_time()
        response = await self.inner(request)
        duration_s = trio.current_time() - started
        destination = request.host if trace is not None else self._workload
        status = response.status
        counted_as = destination or "unknown"
        if trace is not None:  # outbound: the edge's histograms and tries (GET /stats/edges)
            self._telemetry.edges.request(
                source,
                counted_as,
                started=started,
                duration_s=duration_s,
                status=status,
                attempts=len(trace.attempts),
            )
        flags = response.flags
        self._telemetry.record(
            RequestRecord(self._reporter, source, counted_as, status, flags,
                          duration_s, len(request.body), len(response.body), security)
        )  # fmt: skip
        if self._access_log is not None:
            entry = {
                "start_time": round(started, 6),
                "reporter": self._reporter,
                "method": request.method,
                "path": request.target,
                "response_code": status,
                "response_flags": ",".join(flags) or "-",
                "upstream_host": response.upstream or "-",
                "duration_ms": round(duration_s * 1000, 3),
                "x_request_id": request_id,
                "source": source,
                "destination": destination,
                "source_principal": peer.spiffe_id if peer is not None else "-",
                "connection_security_policy": security,
                "response_code_details": response.details or "-",
            }
            if trace is None:  # inbound: the caller's sidecar counted the tries
                count = request.header("x-envoy-attempt-count") or ""
                entry["attempt_count"] = int(count) if count.isdigit() else 1
            else:
                entry["attempt_count"] = len(trace.attempts)
                entry["attempts"] = trace.as_log()
            self._access_log(entry)
        return response


def _request_id(rng: random.Random) -> str:
    """Return a random (version 4) UUID drawn from ``rng``, as ``str(uuid.UUID(...))`` writes it.

    The same text as ``str(uuid.UUID(int=rng.getrandbits(128), version=4))``, which costs
    several times as much (a test checks they agree).
    """
    bits = (rng.getrandbits(128) & _UUID_CLEAR) | _UUID_V4
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
