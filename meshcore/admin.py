"""The admin API of one sidecar (DESIGN.md 4.4), served on its own listener.

``GET /ready``, ``GET /stats``, ``GET /stats/edges`` (per-edge HDR histograms, see
:mod:`meshcore.edges`), ``POST /stats/edges/reset`` (start their measurement now),
``GET /metrics``, ``GET /config``, and ``GET|POST|DELETE /faults`` (``DELETE /faults/NAME``
removes one fault, ``DELETE /faults`` all of them). A fault
is posted as JSON with the same fields as a fault in the experiment file, plus
``destination`` for an outbound (edge) fault; a toxic may also be posted in Toxiproxy's
shape (``type``, ``stream``, ``toxicity``, ``attributes``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import trio

from meshcore.config import read_fault_rule
from meshcore.destination import policy_document
from meshcore.fields import ConfigError, FieldReader, Problem, string
from meshcore.model import Request, Response

if TYPE_CHECKING:
    from meshcore.sidecar import Sidecar

__all__ = ["AdminApi"]


def _json(status: int, payload: object) -> Response:
    body = json.dumps(payload, indent=2, sort_keys=True, default=str).encode() + b"\n"
    return Response(status, headers=(("content-type", "application/json"),), body=body)


class AdminApi:
    """Answers admin requests about, and changes to, one :class:`~meshcore.sidecar.Sidecar`."""

    def __init__(self, sidecar: Sidecar) -> None:
        self._sidecar = sidecar

    async def __call__(self, request: Request) -> Response:
        """Answer one admin request."""
        path = request.path.rstrip("/") or "/"
        method = request.method
        if path == "/ready" and method == "GET":
            ready = self._sidecar.ready
            return Response.local(200 if ready else 503, "ready\n" if ready else "starting\n")
        if path == "/stats" and method == "GET":
            return _json(200, self._sidecar.stats())
        if path == "/stats/edges" and method == "GET":
            edges = self._sidecar.telemetry.edges.document()
            return _json(200, {"workload": self._sidecar.config.name, **edges})
        if path == "/stats/edges/reset" and method == "POST":
            self._sidecar.telemetry.edges.reset(trio.current_time())
            return Response(204)
        if path == "/metrics" and method == "GET":
            body = self._sidecar.telemetry.prometheus_text()
            return Response(200, (("content-type", "text/plain; version=0.0.4"),), body)
        if path == "/config" and method == "GET":
            return _json(200, _effective_config(self._sidecar))
        if path == "/faults":
            return self._faults(request)
        if path.startswith("/faults/") and method == "DELETE":
            name = path.removeprefix("/faults/")
            if self._sidecar.faults.remove(name):
                return Response(204)
            return _json(404, {"error": f"no fault named {name!r}"})
        return _json(404, {"error": f"no admin endpoint {method} {path}"})

    def _faults(self, request: Request) -> Response:
        table = self._sidecar.faults
        if request.method == "GET":
            return _json(200, [dataclasses.asdict(rule) for rule in table.rules()])
        if request.method == "DELETE":
            table.clear()
            return Response(204)
        if request.method == "POST":
            try:
                document = json.loads(request.body or b"null")
                rule = _read_fault(document)
            except json.JSONDecodeError as error:
                return _json(400, {"error": f"body is not JSON: {error}"})
            except ConfigError as error:
                return _json(400, {"error": str(error)})
            table.add(rule)
            return _json(201, dataclasses.asdict(rule))
        return _json(405, {"error": f"{request.method} is not allowed on /faults"})


def _read_fault(document: Any) -> Any:
    problems: list[Problem] = []
    reader = FieldReader(document, (), problems)
    name = reader.take("name", string)
    destination = reader.take("destination", string, default=None)
    rule = read_fault_rule(reader, name=name, destination=destination)
    reader.finish()
    if problems:
        raise ConfigError(problems)
    return rule


def _effective_config(sidecar: Sidecar) -> dict[str, Any]:
    """Return the configuration after defaults, destination policies in Istio's field names."""
    config = sidecar.config
    document = dataclasses.asdict(config)
    document["policies"] = {
        name: policy_document(config.policy(name)) for name in config.destinations
    }
    return document
