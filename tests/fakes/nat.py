"""An in-memory ``NatEdge``: the agent's nftables table as a value. ``ensure`` does what
``nat.Nat.ensure`` does (compare what the table implements with what is wanted; if they differ,
replace the whole table in one transaction, or delete it), counting one write per transaction;
a transaction can be made to fail as ``nft -f`` does."""

from __future__ import annotations

from overlay_agent.desired import Masquerade
from overlay_agent.errors import KernelError


class FakeNat:
    def __init__(self) -> None:
        self.table: Masquerade | None = None  # what the table implements; None: no table
        self.writes = 0
        self._refusals: list[str] = []

    def refuse_next(self, stderr: str = "Error: Could not process rule: No buffer space") -> None:
        """Make the next transaction fail with ``stderr`` (the table stays as it was)."""
        self._refusals.append(stderr)

    def ensure(self, want: Masquerade | None) -> bool:
        if self.table == want:
            return False
        self.writes += 1
        if self._refusals:
            raise KernelError(f"nft -f - failed: {self._refusals.pop(0)}")
        self.table = want
        return True
