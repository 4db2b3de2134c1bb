"""Virtual networks as live objects of the replicated state (pure): add, update, delete.

Design notes
------------
* The config file only seeds an empty log; from then on these commands are the only way the
  network list changes, and, like every command, they are applied by the pure allocator in log
  order, so every replica ends up with the same networks and the same blocks.
* One log entry does the whole change: adding (or enabling) a network gives every registered agent
  its block in that same entry, lowest free first in registration order, with the bridges the
  agent's registration asked for. Agents need nothing but the watch to follow.
* Deleting drops the network's pools, removes it from every agent (and from every ``allow_from``
  and every remembered departed allocation), so a later network of the same name starts fresh: no
  agent ever holds a block of a network that is not in the list.
* Validation is the config file's (``network_edits``). The API runs it before proposing, for a
  quick answer; the allocator runs it again on the state the entry actually meets.
* Never raises (see ``allocator``): every refusal is a ``Rejected`` with a reason the API maps to
  404 (unknown network), 409 (exists, overlaps, in use) or 422 (invalid).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from overlay_master import addressing
from overlay_master.errors import ConfigError, ConfigProblem
from overlay_master.network import NetworkConfig, OverlayConfig
from overlay_master.network_edits import parse_allow_from, parse_new_network
from overlay_master.pool import Pool
from overlay_master.records import (
    AgentOverlay,
    AgentRecord,
    Departed,
    NetworkChanged,
    Rejected,
    Result,
)


class NetworkLifecycle:
    """The network commands of ``allocator.ClusterState`` (mixed into it), and how an agent gets
    its block of a network."""

    network: NetworkConfig | None
    revision: int
    agents: dict[str, AgentRecord]
    blocks: dict[str, Pool]
    blocks6: dict[str, Pool]
    departed: dict[str, Departed]

    if TYPE_CHECKING:  # provided by reports.AgentReports, the other half of ClusterState

        def network_users(self, name: str) -> list[str]: ...

        def _forget_containers(self, ip: str | None = None, network: str | None = None) -> None: ...

    # -- blocks -----------------------------------------------------------------------------------

    def _add_missing_overlays(
        self,
        current: tuple[AgentOverlay, ...],
        departed: Departed | None,
        mesos: bool,
        docker: bool,
    ) -> tuple[tuple[AgentOverlay, ...], tuple[tuple[str, str], ...]]:
        assert self.network is not None
        previous = {name: (b, b6) for name, b, b6 in departed.blocks} if departed else {}
        have = {o.name for o in current}
        overlays = list(current)
        skipped: list[tuple[str, str]] = []
        for config in self.network.overlays:
            if not config.enabled or config.name in have:
                continue
            want, want6 = previous.get(config.name, (None, None))
            allocated = self._allocate_blocks(config, want, want6)
            if isinstance(allocated, str):
                skipped.append((config.name, allocated))
                continue
            block, block6 = allocated
            overlays.append(self._agent_overlay(config, block, block6, mesos, docker))
        return tuple(overlays), tuple(skipped)

    def _allocate_blocks(
        self, config: OverlayConfig, want: int | None, want6: int | None
    ) -> tuple[int | None, int | None] | str:
        """Both families or neither (DC/OS leaked the IPv4 block when IPv6 then failed)."""
        pool, pool6 = self.blocks.get(config.name), self.blocks6.get(config.name)
        if pool is not None and not pool.can_take(want):
            return "subnet_exhausted"
        if pool6 is not None and not pool6.can_take(want6):
            return "subnet6_exhausted"
        block = pool.take(want) if pool is not None else None
        block6 = pool6.take(want6) if pool6 is not None else None
        return block, block6

    def _agent_overlay(
        self,
        config: OverlayConfig,
        block: int | None,
        block6: int | None,
        mesos: bool,
        docker: bool,
    ) -> AgentOverlay:
        subnet = subnet6 = None
        if block is not None and config.subnet is not None and config.prefix is not None:
            subnet = addressing.block_text(config.subnet, config.prefix, block)
        if block6 is not None and config.subnet6 is not None and config.prefix6 is not None:
            subnet6 = addressing.block_text(config.subnet6, config.prefix6, block6)
        return AgentOverlay(config.name, block, block6, subnet, subnet6, mesos, docker)

    # -- add --------------------------------------------------------------------------------------

    def _add_network(self, plain: object) -> Result:
        assert self.network is not None
        overlay, problems, conflicts = parse_new_network(plain, self.network)
        if overlay is None:
            if problems:
                return Rejected("invalid_network", _text(problems))
            reason = "network_exists" if conflicts[0].field == "name" else "network_overlap"
            return Rejected(reason, _text(conflicts))
        self.network = replace(self.network, overlays=(*self.network.overlays, overlay))
        self._create_pools(overlay)
        self.revision += 1
        touched = self._give_every_agent(overlay) if overlay.enabled else ()
        return NetworkChanged(overlay.name, "added", self.revision, True, touched)

    def _create_pools(self, overlay: OverlayConfig) -> None:
        if overlay.subnet is not None and overlay.prefix is not None:
            self.blocks[overlay.name] = Pool(
                addressing.block_pool_size(overlay.subnet, overlay.prefix)
            )
        if overlay.subnet6 is not None and overlay.prefix6 is not None:
            self.blocks6[overlay.name] = Pool(
                addressing.block_pool_size(overlay.subnet6, overlay.prefix6)
            )

    def _give_every_agent(self, config: OverlayConfig) -> tuple[str, ...]:
        """A block of ``config`` for every registered agent without one, in registration order.
        Call after bumping the revision: changed records carry it."""
        touched = []
        for ip, record in list(self.agents.items()):
            if record.overlay(config.name) is not None:
                continue
            skipped = tuple(s for s in record.skipped if s[0] != config.name)
            allocated = self._allocate_blocks(config, None, None)
            if isinstance(allocated, str):
                new = replace(record, skipped=(*skipped, (config.name, allocated)))
            else:
                mesos, docker = record.bridges
                overlay = self._agent_overlay(config, *allocated, mesos, docker)
                new = replace(record, overlays=(*record.overlays, overlay), skipped=skipped)
            if new != record:
                self.agents[ip] = replace(new, revision=self.revision)
                touched.append(ip)
        return tuple(touched)

    # -- update -----------------------------------------------------------------------------------

    def _update_network(self, command: dict[str, Any]) -> Result:
        assert self.network is not None
        name, changes = command.get("name"), command.get("changes")
        current = self.network.overlay(name) if isinstance(name, str) else None
        if current is None:
            return Rejected("unknown_network", f"there is no network {name!r}")
        if not isinstance(changes, dict) or not set(changes) <= {"enabled", "allow_from"}:
            return Rejected("bad_command", "changes may hold only enabled and allow_from")
        enabled = changes.get("enabled", current.enabled)
        if not isinstance(enabled, bool):
            return Rejected("invalid_network", f"enabled: {enabled!r}: must be true or false")
        allow_from = current.allow_from
        if "allow_from" in changes:
            try:
                allow_from = parse_allow_from(changes["allow_from"], current.name, self.network)
            except ConfigError as e:
                return Rejected("invalid_network", _text(e.problems))
        updated = replace(current, enabled=enabled, allow_from=allow_from)
        if updated == current:
            return NetworkChanged(current.name, "updated", self.revision, False)
        self.network = replace(
            self.network,
            overlays=tuple(updated if o.name == current.name else o for o in self.network.overlays),
        )
        self.revision += 1
        touched = self._give_every_agent(updated) if enabled and not current.enabled else ()
        return NetworkChanged(current.name, "updated", self.revision, True, touched)

    # -- delete -----------------------------------------------------------------------------------

    def _delete_network(self, command: dict[str, Any]) -> Result:
        assert self.network is not None
        name, force = command.get("name"), command.get("force", False)
        config = self.network.overlay(name) if isinstance(name, str) else None
        if config is None:
            return Rejected("unknown_network", f"there is no network {name!r}")
        if not isinstance(force, bool):
            return Rejected("bad_command", "force must be a boolean")
        users = self.network_users(config.name)
        if users and not force:
            return Rejected(
                "network_in_use",
                f"{len(users)} agent(s) report containers on network {config.name!r}, or hold a "
                f"block of it and have not reported (first: {', '.join(users[:3])}); delete "
                "with force to take their blocks away",
            )
        self.revision += 1
        touched = self._forget(config.name)
        self._forget_containers(network=config.name)
        remaining = tuple(
            replace(o, allow_from=tuple(a for a in o.allow_from if a != config.name))
            for o in self.network.overlays
            if o.name != config.name
        )
        self.network = replace(self.network, overlays=remaining)
        return NetworkChanged(config.name, "deleted", self.revision, True, touched)

    def _forget(self, name: str) -> tuple[str, ...]:
        """Remove network ``name`` from every agent, its pools and the departed records."""
        touched = []
        for ip, record in list(self.agents.items()):
            overlays = tuple(o for o in record.overlays if o.name != name)
            skipped = tuple(s for s in record.skipped if s[0] != name)
            if (overlays, skipped) != (record.overlays, record.skipped):
                self.agents[ip] = replace(
                    record, overlays=overlays, skipped=skipped, revision=self.revision
                )
                touched.append(ip)
        self.blocks.pop(name, None)
        self.blocks6.pop(name, None)
        for ip, gone in list(self.departed.items()):
            blocks = tuple(b for b in gone.blocks if b[0] != name)
            if blocks != gone.blocks:
                self.departed[ip] = replace(gone, blocks=blocks)
        return tuple(touched)


def _text(problems: list[ConfigProblem]) -> str:
    return "; ".join(str(p) for p in problems)
