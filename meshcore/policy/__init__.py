"""Sans-IO policy objects: plain synchronous decisions with ``now`` and ``rng`` passed in.

Nothing in this package imports trio, ssl, h11 or sockets, so every decision is testable
without an event loop.
"""
