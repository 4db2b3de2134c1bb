"""The agent's one error hierarchy.

AgentError
 +-- ConfigError          bad command line or option value (the option is named)
 +-- StateError           a cluster-state document the agent cannot read
 +-- MasterError          talking to the masters failed
 |    +-- Unauthorized    a master refused our token (401)
 |    +-- Rejected        a master refused the request itself (4xx other than 401)
 +-- KernelError          a netlink, sysctl or nft operation failed
 +-- CniError             writing a CNI config or reading host-local's leases failed
 +-- DockerError          the Docker Engine could not be reached or refused a request
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(AgentError):
    """A command-line option or setting is invalid."""


class StateError(AgentError):
    """A cluster-state document (from the masters or a file) cannot be interpreted."""


class MasterError(AgentError):
    """No master answered usefully."""


class Unauthorized(MasterError):
    """A master answered 401: the token is missing or wrong."""


class Rejected(MasterError):
    """A master answered 4xx (other than 401): retrying the same request will not help."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason


class KernelError(AgentError):
    """A kernel operation (netlink, sysctl, nftables) failed."""


class CniError(AgentError):
    """A CNI config could not be written, or host-local's lease directory could not be read."""


class DockerError(AgentError):
    """The Docker Engine API could not be reached, or it refused a request (its message kept)."""
