"""The decision trace of one request: what each try did and why the next one did (not) happen.

The outermost layer creates a :class:`RequestTrace` and hangs it on the request; the layers
below write into it (the retry layer opens a record per try and writes its outcome and the
decision after it, the balancer the host it chose and the hosts it skipped), and the access
log prints it. It answers the question Envoy's users cannot answer short of debug logs: why
was this request (not) retried?

It is the one mutable thing a request carries; it never influences a decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshcore.model import Endpoint

__all__ = ["AttemptRecord", "RequestTrace"]


@dataclass(slots=True)
class AttemptRecord:
    """One try: where it went, how it ended, and what was decided after it."""

    number: int
    started: float
    host: str = "-"
    outcome: str = ""
    duration_s: float = 0.0
    decision: str = ""
    skipped: list[str] = field(default_factory=list)

    def as_log(self) -> dict[str, Any]:
        """Return the record as the access log writes it."""
        entry: dict[str, Any] = {
            "attempt": self.number,
            "host": self.host,
            "outcome": self.outcome or "unfinished",
            "duration_ms": round(self.duration_s * 1000, 3),
            "decision": self.decision or "-",
        }
        if self.skipped:
            entry["skipped"] = list(self.skipped)
        return entry


class RequestTrace:
    """The records of one request's tries, plus the hosts already tried."""

    __slots__ = ("attempts", "tried")

    def __init__(self) -> None:
        self.attempts: list[AttemptRecord] = []
        self.tried: set[Endpoint] = set()

    def start(self, number: int, now: float) -> AttemptRecord:
        """Open the record of try ``number``."""
        record = AttemptRecord(number, now)
        self.attempts.append(record)
        return record

    @property
    def current(self) -> AttemptRecord | None:
        """Return the record of the try in progress (the last one), if any."""
        return self.attempts[-1] if self.attempts else None

    def chose(self, endpoint: Endpoint) -> None:
        """Note the host the balancer chose for the current try."""
        self.tried.add(endpoint)
        if self.attempts:
            self.attempts[-1].host = str(endpoint)

    def skipped(self, note: str) -> None:
        """Note a host the balancer skipped for the current try, and why."""
        if self.attempts:
            self.attempts[-1].skipped.append(note)

    def finish_open(self, outcome: str, decision: str, now: float) -> None:
        """Close the current record if it is still open (its try was cut short)."""
        record = self.current
        if record is not None and not record.outcome:
            record.outcome = outcome
            record.duration_s = now - record.started
            record.decision = decision

    def as_log(self) -> list[dict[str, Any]]:
        """Return every record as the access log writes them."""
        return [record.as_log() for record in self.attempts]
