"""Mutual TLS between sidecars: contexts, SPIFFE identities, and a TLS-wrapping network.

:class:`TlsNetwork` wraps any :class:`~meshcore.transport.network.Network` (TCP or memory), so
TLS is added at the transport edge and everything above it runs unchanged in real and
simulate mode (:class:`TlsStream` runs over any trio stream, memory streams included):

- ``connect`` opens the inner connection, runs a TLS 1.3 handshake presenting the workload
  certificate, and checks that the server's SPIFFE ID is the one expected for that endpoint.
  A failed handshake or a mismatch closes the connection and raises
  :class:`~meshcore.errors.TlsFailure` (a connect failure: Envoy's ``UF``, retried under
  ``connect-failure``).
- ``serve`` accepts connections per PeerAuthentication mode. ``STRICT`` requires a TLS
  handshake with a client certificate signed by the mesh CA; ``PERMISSIVE`` looks at the first
  byte (``0x16`` opens a TLS handshake record, plain HTTP starts with a method's letter) and
  serves either on the same port. A handshake that fails, or does not finish within
  :data:`HANDSHAKE_TIMEOUT_S`, closes the connection without a byte of HTTP.

The handler of a served connection finds the verified peer with :func:`peer_identity`.

``cleartext=True`` (simulate mode's ``spec.network.tlsData: clear``, docs/simulate.md) keeps
the handshake and drops the record layer: the same TLS 1.3 handshake runs over the inner
connection, with the same certificates, the same verification and the same failures, and then
the application data goes over the inner connection as it is, the verified peer attached to the
stream (:class:`ClearTlsStream`). Both ends of a connection must agree on it, as both ends of a
simulated mesh do. Encrypting and decrypting every record is what it saves: over memory streams
that was a third of simulate mode's CPU per request.

Certificates are replaced at runtime (:meth:`WorkloadTls.replace`, driven by
:func:`rotate_forever`): new connections use the new contexts, established ones keep theirs,
so a rotation fails no request. Note on TLS 1.3: a client's handshake completes before the
server has checked the client certificate, so a rejected client sees the refusal on its first
read (an :class:`~meshcore.errors.UpstreamReset`), not as a handshake error.
"""

from __future__ import annotations

import contextlib
import hashlib
import operator
import ssl
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from meshcore.ca import WorkloadCertificate, rotation_due
from meshcore.errors import TlsFailure
from meshcore.identity import PeerIdentity
from meshcore.model import Endpoint
from meshcore.transport.network import ConnectionHandler, Network, PeekableStream, readable_now

__all__ = [
    "HANDSHAKE_TIMEOUT_S",
    "ClearTlsStream",
    "TlsNetwork",
    "TlsStream",
    "WorkloadTls",
    "client_context",
    "peer_identity",
    "rotate_forever",
    "server_context",
]

# How long a server waits for a new connection's first byte and TLS handshake. Envoy has no
# default (transport_socket_connect_timeout); without one a client that connects and stays
# silent holds a task and a descriptor forever.
HANDSHAKE_TIMEOUT_S = 10.0
# How long closing a TLS stream waits to hand its close_notify to the transport.
_CLOSE_NOTIFY_TIMEOUT_S = 1.0
# A TLS record's largest plaintext: a read returns at most one record's worth.
_RECORD_PAYLOAD = 16384
_TLS_HANDSHAKE_RECORD = 0x16


def _load_chain(context: ssl.SSLContext, certificate: WorkloadCertificate) -> None:
    # ssl can only load a certificate chain from files: write them to a private temporary
    # folder, load, and delete.
    with tempfile.TemporaryDirectory(prefix="meshchaos-tls-") as folder:
        cert_path, key_path = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        cert_path.write_bytes(certificate.cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(certificate.key_pem)
        context.load_cert_chain(cert_path, key_path)


def _mesh_context(protocol: int, certificate: WorkloadCertificate) -> ssl.SSLContext:
    context = ssl.SSLContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    # Identities are SPIFFE URIs, not host names: the peer is checked by its URI SAN instead.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=certificate.ca_pem.decode("ascii"))
    _load_chain(context, certificate)
    return context


def server_context(certificate: WorkloadCertificate) -> ssl.SSLContext:
    """Return a TLS 1.3 server context that requires a client certificate from the mesh CA."""
    context = _mesh_context(ssl.PROTOCOL_TLS_SERVER, certificate)
    # No session tickets: clients keep connections pooled instead of resuming sessions, and
    # tickets would only cost a handshake CPU and bytes that arrive on idle connections.
    context.num_tickets = 0
    return context


def client_context(certificate: WorkloadCertificate) -> ssl.SSLContext:
    """Return a TLS 1.3 client context that presents ``certificate`` and trusts the mesh CA."""
    return _mesh_context(ssl.PROTOCOL_TLS_CLIENT, certificate)


class WorkloadTls:
    """A workload's current certificate and the TLS contexts made from it."""

    def __init__(self, certificate: WorkloadCertificate, *, issued_at_s: float = 0.0) -> None:
        self.rotations = 0
        self._install(certificate, issued_at_s)

    def _install(self, certificate: WorkloadCertificate, issued_at_s: float) -> None:
        self.certificate = certificate
        self.issued_at_s = issued_at_s
        self.server_context = server_context(certificate)
        self.client_context = client_context(certificate)

    def replace(self, certificate: WorkloadCertificate, *, issued_at_s: float) -> None:
        """Use ``certificate`` for every new connection from now on."""
        self._install(certificate, issued_at_s)
        self.rotations += 1


async def rotate_forever(
    tls: WorkloadTls, issue: Callable[[], WorkloadCertificate], lifetime_s: float
) -> None:
    """Replace ``tls``'s certificate at half its lifetime with ``issue()``, forever (Istio)."""
    while True:
        await trio.sleep_until(rotation_due(tls.issued_at_s, lifetime_s))
        tls.replace(issue(), issued_at_s=trio.current_time())


def peer_identity(stream: trio.abc.Stream) -> PeerIdentity | None:
    """Return the verified peer of a TLS stream, or ``None`` for plain text.

    The SPIFFE ID is the certificate's URI SAN; a certificate without one gives an identity
    with an empty ID, which matches no principal.
    """
    if isinstance(stream, (TlsStream, ClearTlsStream)):
        return stream.peer
    return None


def _identity(der: bytes | None, decoded: dict[str, Any] | None) -> PeerIdentity | None:
    if der is None:
        return None
    uris = [value for kind, value in (decoded or {}).get("subjectAltName", ()) if kind == "URI"]
    return PeerIdentity(uris[0] if uris else "", hashlib.sha256(der).hexdigest())


class TlsStream(trio.abc.Stream, PeekableStream):
    """TLS over any trio stream: an ``ssl.SSLObject`` and two memory BIOs, driven directly.

    The record layer is that of :class:`trio.SSLStream` with less Python per call: a receive
    tries to decrypt what has already arrived before it reads ``transport``, a send encrypts
    into the outgoing BIO and hands its bytes to ``transport`` in one ``send_all``. trio's
    stream contract holds (``trio.testing.check_two_way_stream`` runs on it): every receive
    and send is a checkpoint, two tasks receiving (or sending) at once get
    :class:`trio.BusyResourceError`, a TLS error or a broken transport is
    :class:`trio.BrokenResourceError` (the ``ssl.SSLError`` as its cause) and the stream stays
    broken, a ``close_notify`` reads as end-of-stream and an end-of-stream without one as
    broken. A send cancelled while ``transport`` was taking its records breaks the stream, as
    it does trio's.

    A receive never sends. TLS 1.3 has nothing after the handshake that a peer waits for: a
    ``KeyUpdate`` asking for one back is answered "before the next application data record"
    (RFC 8446, 4.6.3), which is what the outgoing BIO does, as the answer goes out at the head
    of the next send. So sending and receiving tasks never share ``transport``'s send side.

    ``peer`` is the identity the handshake verified (``None`` before :meth:`do_handshake`).
    """

    __slots__ = (
        "_broken",
        "_closed",
        "_finished",
        "_incoming",
        "_outgoing",
        "_receiving",
        "_sending",
        "_tls",
        "peer",
        "transport",
    )

    def __init__(
        self, transport: trio.abc.Stream, context: ssl.SSLContext, *, server_side: bool
    ) -> None:
        self.transport = transport
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side)
        self.peer: PeerIdentity | None = None
        self._broken = True  # no records before the handshake
        self._closed = False
        self._finished = False  # the peer's close_notify was read: every read gives b""
        self._sending = False
        self._receiving = False

    async def do_handshake(self) -> None:
        """Run the TLS handshake; raise :class:`trio.BrokenResourceError` if it fails."""
        await _run_handshake(self.transport, self._tls, self._incoming, self._outgoing)
        self.peer = _peer(self._tls)
        self._broken = False

    def _unusable(self) -> trio.ClosedResourceError | trio.BrokenResourceError:
        if self._closed:
            return trio.ClosedResourceError("this TLS stream was closed")
        return trio.BrokenResourceError("this TLS stream is broken")

    def _read(self, max_bytes: int) -> bytes | None:
        """Decrypt what has arrived: data, b"" after the peer's close_notify, or ``None``."""
        try:
            return self._tls.read(max_bytes)
        except ssl.SSLWantReadError:
            return None
        except ssl.SSLZeroReturnError:
            self._finished = True
            return b""
        except ssl.SSLError as error:
            self._broken = True
            raise trio.BrokenResourceError from error

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return up to ``max_bytes`` decrypted bytes (b"" after close_notify), waiting for some."""
        if max_bytes is None:
            max_bytes = _RECORD_PAYLOAD
        elif operator.index(max_bytes) < 1:
            raise ValueError("max_bytes must be at least 1")
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving on this stream")
        if self._closed or self._broken:
            raise self._unusable()
        self._receiving = True
        try:
            # A cancellation point before anything is read, then only points that lose
            # nothing: the transport's receive, or a shielded yield once data is in hand.
            await trio.lowlevel.checkpoint_if_cancelled()
            incoming = self._incoming
            # With nothing arrived and nothing decrypted the read could only raise
            # SSLWantReadError, which costs several times this look (the ssl module builds the
            # exception): a request's first read usually finds nothing.
            if incoming.pending or self._tls.pending() or incoming.eof or self._finished:
                data = self._read(max_bytes)
                if data is not None:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    return data
            data = None
            while data is None:
                try:
                    chunk = await self.transport.receive_some()
                except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
                    if self._closed:  # closed by another task while this one waited
                        raise trio.ClosedResourceError("this TLS stream was closed") from error
                    self._broken = True
                    raise
                if chunk:
                    incoming.write(chunk)
                else:
                    incoming.write_eof()  # without close_notify, the read raises SSLEOFError
                data = self._read(max_bytes)
            return data
        finally:
            self._receiving = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt ``data`` and send its records on the transport."""
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        if self._closed or self._broken:
            raise self._unusable()
        self._sending = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()  # cancelled here, nothing was encrypted
            if data:
                try:
                    self._tls.write(data)
                except ssl.SSLError as error:
                    self._broken = True
                    raise trio.BrokenResourceError from error
            try:
                await self.transport.send_all(self._outgoing.read())
            except BaseException:
                # Records left the BIO and maybe not the transport: the peer's stream of
                # records may have a hole, so nothing more can be sent.
                self._broken = True
                raise
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        """Wait as the transport does."""
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        if self._closed or self._broken:
            raise self._unusable()
        self._sending = True
        try:
            await self.transport.wait_send_all_might_not_block()
        finally:
            self._sending = False

    async def aclose(self) -> None:
        """Send a close_notify if the stream can, without waiting for the peer's; close.

        The close_notify gets :data:`_CLOSE_NOTIFY_TIMEOUT_S` to leave (a peer that reads
        nothing would hold it forever), none when another task is sending; the transport is
        closed in any case, cancelled or not.
        """
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        transport = self.transport
        try:
            if not self._broken and not self._sending:
                with contextlib.suppress(ssl.SSLError):  # SSLWantReadError: the peer's not read
                    self._tls.unwrap()
                if self._outgoing.pending:
                    with (
                        trio.move_on_after(_CLOSE_NOTIFY_TIMEOUT_S),
                        contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
                    ):
                        await transport.send_all(self._outgoing.read())
        finally:
            await transport.aclose()

    def readable_now(self) -> bool:
        """Tell whether a read would return at once (see :func:`readable_now`).

        Decrypted bytes not handed out, bytes arrived and not decrypted, then the transport.
        """
        return (
            self._closed
            or self._broken
            or self._tls.pending() > 0
            or self._incoming.pending > 0
            or readable_now(self.transport)
        )


async def _run_handshake(
    transport: trio.abc.Stream,
    tls: ssl.SSLObject,
    incoming: ssl.MemoryBIO,
    outgoing: ssl.MemoryBIO,
) -> None:
    """Run ``tls``'s handshake over ``transport``, its records through the two memory BIOs.

    Errors are those of ``trio.SSLStream.do_handshake``: a failed handshake, or an
    end-of-stream during it, raises :class:`trio.BrokenResourceError` with the
    ``ssl.SSLError`` as its cause. As there, a failing side sends no alert: it closes.
    Bytes that arrived behind the handshake's last message stay in ``incoming``.
    """
    while True:
        try:
            tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        except (ssl.SSLError, ssl.CertificateError) as error:
            raise trio.BrokenResourceError from error
        if outgoing.pending:
            await transport.send_all(outgoing.read())
        if done:
            return
        data = await transport.receive_some()
        if data:
            incoming.write(data)
        else:
            incoming.write_eof()  # the next step raises SSLEOFError, as it does for trio


def _peer(tls: ssl.SSLObject) -> PeerIdentity | None:
    return _identity(tls.getpeercert(binary_form=True), tls.getpeercert())


async def _handshake_only(
    transport: trio.abc.Stream, context: ssl.SSLContext, *, server_side: bool
) -> ClearTlsStream:
    """Run a TLS handshake over ``transport``; return the connection in the clear after it.

    Errors are those of :func:`_run_handshake`.
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=server_side)
    await _run_handshake(transport, tls, incoming, outgoing)
    # The mesh's servers send no session tickets (server_context): nothing of TLS follows the
    # handshake, and whatever arrived behind it is the peer's first application data.
    return ClearTlsStream(transport, _peer(tls), incoming.read())


class _Replay(trio.abc.Stream, PeekableStream):
    """A stream that first gives back ``prefix``, bytes already read from ``inner``.

    PERMISSIVE sniffing replays the byte it read; a handshake-only connection replays what
    arrived behind the handshake's last message.
    """

    def __init__(self, inner: trio.abc.Stream, prefix: bytes) -> None:
        self.inner = inner
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Return the prefix first, then what the inner stream receives."""
        if self._prefix:
            await trio.lowlevel.checkpoint()
            size = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return await self.inner.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` on the inner stream as it is."""
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait as the inner stream does."""
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Close the inner stream."""
        await self.inner.aclose()

    def readable_now(self) -> bool:
        """Tell whether a read would return at once (see :func:`readable_now`)."""
        return bool(self._prefix) or readable_now(self.inner)


class ClearTlsStream(_Replay):
    """A connection whose mutual TLS handshake was real and whose data then goes in the clear.

    ``peer`` is the identity the handshake verified; ``leftover`` are bytes that arrived
    behind the handshake's last message, read first. There is no close_notify to send.
    """

    def __init__(self, inner: trio.abc.Stream, peer: PeerIdentity | None, leftover: bytes) -> None:
        super().__init__(inner, leftover)
        self.peer = peer


class TlsNetwork:
    """A network whose connections carry mutual TLS with the workload's certificate.

    ``mode`` (``STRICT`` or ``PERMISSIVE``) governs ``serve``; ``expected`` names the SPIFFE
    ID a server at an endpoint must present (``None``: any mesh identity). ``counters`` counts
    handshakes and failures under ``prefix``, with Envoy's ``ssl.*`` statistic names.
    ``cleartext``: handshake only, then the data in the clear (see the module's docstring).
    """

    def __init__(
        self,
        inner: Network,
        tls: WorkloadTls,
        *,
        mode: str = "STRICT",
        expected: Callable[[Endpoint], str | None] = lambda endpoint: None,
        counters: Counter[str] | None = None,
        prefix: str = "tls",
        cleartext: bool = False,
    ) -> None:
        if mode not in ("STRICT", "PERMISSIVE"):
            raise ValueError(f"a TLS network serves STRICT or PERMISSIVE, not {mode!r}")
        self._inner = inner
        self._tls = tls
        self._mode = mode
        self._expected = expected
        self.counters: Counter[str] = Counter() if counters is None else counters
        self._prefix = prefix
        self._cleartext = cleartext

    def _count(self, name: str) -> None:
        self.counters[f"{self._prefix}.ssl.{name}"] += 1

    def allocate(self, host: str, count: int) -> list[Endpoint]:
        """Return free endpoints of the inner network."""
        return self._inner.allocate(host, count)

    async def connect(self, endpoint: Endpoint) -> trio.abc.Stream:
        """Connect, handshake, and check the server's SPIFFE ID; raise ConnectFailure."""
        raw = await self._inner.connect(endpoint)
        stream: trio.abc.Stream = raw
        try:
            stream = await self._handshake(raw, server_side=False)
        except trio.BrokenResourceError as error:
            self._count("connection_error")
            await trio.aclose_forcefully(stream)
            raise TlsFailure(f"TLS handshake with {endpoint} failed: {error.__cause__}") from error
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        self._count("handshake")
        expected = self._expected(endpoint)
        peer = peer_identity(stream)
        if expected is not None and (peer is None or peer.spiffe_id != expected):
            self._count("fail_verify_san")
            await trio.aclose_forcefully(stream)
            presented = peer.spiffe_id if peer is not None else "nothing"
            raise TlsFailure(
                f"TLS peer identity mismatch at {endpoint}: expected {expected}, got {presented}"
            )
        return stream

    async def serve(
        self,
        endpoint: Endpoint,
        handler: ConnectionHandler,
        *,
        task_status: trio.TaskStatus[Endpoint] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve ``endpoint``; ``handler`` gets a TLS stream (or plain text, if PERMISSIVE)."""

        async def accept(raw: trio.abc.Stream) -> None:
            stream = None
            with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
                stream = await self._accept(raw)
            if stream is None:
                await trio.aclose_forcefully(raw)
                return
            await handler(stream)

        await self._inner.serve(endpoint, accept, task_status=task_status)

    async def _accept(self, raw: trio.abc.Stream) -> trio.abc.Stream | None:
        """Return the stream to serve HTTP on, or ``None`` when the connection is refused."""
        transport = raw
        if self._mode == "PERMISSIVE":
            try:
                first = await raw.receive_some(1)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return None
            if not first:
                return None
            transport = _Replay(raw, bytes(first))
            if first[0] != _TLS_HANDSHAKE_RECORD:
                self._count("plaintext")
                return transport
        try:
            stream = await self._handshake(transport, server_side=True)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._count("connection_error")
            return None
        self._count("handshake")
        return stream

    async def _handshake(self, transport: trio.abc.Stream, *, server_side: bool) -> trio.abc.Stream:
        """Return ``transport`` after a TLS handshake: as a TLS stream, or in the clear."""
        tls = self._tls
        context = tls.server_context if server_side else tls.client_context
        if self._cleartext:
            return await _handshake_only(transport, context, server_side=server_side)
        # On failure the caller counts, then closes the transport (nothing else to free).
        stream = TlsStream(transport, context, server_side=server_side)
        await stream.do_handshake()
        return stream
