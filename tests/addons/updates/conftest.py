"""Fixtures of the updates tests: the shared fleet of real SSH test hosts."""

from tests.support.hosts.fixtures import host_fleet

__all__ = ["host_fleet"]
