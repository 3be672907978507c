"""Fixtures of the engines tests: a TLS engine, a single-node Swarm and an engine behind SSH."""

from tests.support.engines import ssh_engine, swarm_engine, tls_engine

__all__ = ["ssh_engine", "swarm_engine", "tls_engine"]
