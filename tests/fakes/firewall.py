"""An in-memory ``FirewallEdge``: the agent's nftables table as the contents of its sets.

``ensure`` does what ``firewall.Firewall.ensure`` does with a table of our shape: compute the
sets' wanted contents (the real ``firewall.contents``), and if they differ, change them in ONE
transaction (counted as one write), or delete the table when there is no masquerade; nothing
differs, nothing is written. A transaction can be made to fail as ``nft -f`` does (the table
stays as it was). tests/netns/test_agent_firewall.py runs the same sequence against the real
table and compares the writes.
"""

from __future__ import annotations

from overlay_agent.desired import Masquerade
from overlay_agent.errors import KernelError
from overlay_agent.firewall import Contents, changes, contents
from overlay_agent.isolation import Isolation


class FakeFirewall:
    def __init__(self) -> None:
        self.table: Contents | None = None  # the sets' contents; None: no table
        self.writes = 0
        self.transactions: list[str] = []  # the element changes of each incremental write
        self._refusals: list[str] = []

    def refuse_next(self, stderr: str = "Error: Could not process rule: No buffer space") -> None:
        """Make the next transaction fail with ``stderr`` (the table stays as it was)."""
        self._refusals.append(stderr)

    def ensure(self, masquerade: Masquerade | None, isolation: Isolation) -> bool:
        want = None if masquerade is None else contents(masquerade, isolation)
        if self.table == want:
            return False
        self.writes += 1
        if self._refusals:
            raise KernelError(f"nft -f - failed: {self._refusals.pop(0)}")
        if self.table is not None and want is not None:
            self.transactions.append(changes(self.table, want))
        self.table = want
        return True
