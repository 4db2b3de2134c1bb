"""Validate plain data into a ``NetworkConfig`` with DC/OS's rules and ours (pure, no I/O).

Accepted input is either a whole DC/OS ``config.yaml`` document (the ``dcos_overlay_network`` key
inside it, as a mapping or as the JSON string DC/OS's generator used) or the bare block itself.

Design notes
------------
* DC/OS validated little (docs/dcos-overlay.md, "Validation"): it did not require ``prefix``, did
  not bound it, accepted host bits, and did not check the VTEP subnet against the overlays. Each of
  those gaps produced a broken or undefined allocation at run time. Here every rule is checked
  before anything reaches the replicated log, and *all* problems are reported at once, each naming
  the field, the value and the rule in plain words.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from overlay_master.address_spaces import Net, overlap_problems, spaces_of, vtep_spaces
from overlay_master.errors import ConfigError, ConfigProblem
from overlay_master.network import (
    DCOS_KEY,
    MAX_MTU,
    MAX_NAME_LENGTH,
    MAX_PREFIX,
    MAX_PREFIX6,
    MAX_VTEP6_PREFIX,
    MAX_VTEP_PREFIX,
    MIN_MTU,
    MIN_VTEP_PREFIX,
    NAME_PATTERN,
    NETWORK_KEYS,
    OUI_PATTERN,
    OVERLAY_KEYS,
    RESERVED_NAMES,
    NetworkConfig,
    OverlayConfig,
)


def parse_network(document: object, source: str = "network config") -> NetworkConfig:
    """Validate a parsed document; raise ``ConfigError`` listing every problem found."""
    checker = Checker()
    block = checker.network_block(document)
    net = checker.network(block) if block is not None else None
    if checker.problems or net is None:
        raise ConfigError(checker.problems, source)
    return net


@dataclass
class Checker:
    """Collects problems instead of stopping at the first one."""

    problems: list[ConfigProblem] = field(default_factory=list)

    def problem(self, where: str, value: object, rule: str) -> None:
        self.problems.append(ConfigProblem(where, value, rule))

    # -- the outer shape --------------------------------------------------------------------------

    def network_block(self, document: object) -> dict[str, Any] | None:
        if not isinstance(document, dict):
            self.problem(
                "(top level)", _short(document), "must be a mapping with the network block"
            )
            return None
        if DCOS_KEY not in document:
            return document
        block = document[DCOS_KEY]
        if isinstance(block, str):  # DC/OS's generator passes the block around as a JSON string
            try:
                block = json.loads(block)
            except json.JSONDecodeError as e:
                self.problem(DCOS_KEY, _short(block), f"is a string but not valid JSON: {e}")
                return None
        if not isinstance(block, dict):
            self.problem(DCOS_KEY, _short(block), "must be a mapping")
            return None
        return block

    def unknown_keys(self, where: str, block: dict[str, Any], known: tuple[str, ...]) -> None:
        for key, value in block.items():
            if key not in known:
                self.problem(
                    f"{where}{key}", value, f"unknown key; allowed keys are {', '.join(known)}"
                )

    # -- the network block ------------------------------------------------------------------------

    def network(self, block: dict[str, Any]) -> NetworkConfig | None:
        self.unknown_keys("", block, NETWORK_KEYS)
        vtep_subnet = self.vtep_subnet(block)
        oui = self.oui(block)
        vtep_subnet6 = self.cidr6(
            block, "vtep_subnet6", "vtep_subnet6", max_prefix=MAX_VTEP6_PREFIX
        )
        vtep_mtu = self.mtu(block)
        overlays = self.overlays(block.get("overlays"))
        self.overlaps(overlays, vtep_subnet, vtep_subnet6)
        if vtep_subnet is None or oui is None or overlays is None:
            return None
        return NetworkConfig(vtep_subnet, oui, tuple(overlays), vtep_subnet6, vtep_mtu)

    def vtep_subnet(self, block: dict[str, Any]) -> IPv4Network | None:
        if "vtep_subnet" not in block:
            self.problem("vtep_subnet", None, "is required (an IPv4 CIDR such as 44.128.0.0/20)")
            return None
        net = self.cidr4(block, "vtep_subnet", "vtep_subnet", max_prefix=MAX_VTEP_PREFIX)
        if net is not None and net.prefixlen < MIN_VTEP_PREFIX:
            self.problem(
                "vtep_subnet",
                block["vtep_subnet"],
                "VTEP MACs are derived from the last 24 bits of the VTEP IP, so the VTEP subnet "
                f"must be /{MIN_VTEP_PREFIX} or longer to keep every MAC unique",
            )
            return None
        return net

    def oui(self, block: dict[str, Any]) -> str | None:
        value = block.get("vtep_mac_oui")
        if value is None:
            self.problem(
                "vtep_mac_oui", None, "is required (six hex bytes such as 70:B3:D5:00:00:00)"
            )
            return None
        if not isinstance(value, str) or not OUI_PATTERN.match(value):
            self.problem(
                "vtep_mac_oui", value, "must be a MAC address in the format xx:xx:xx:00:00:00"
            )
            return None
        octets = [int(part, 16) for part in value.split(":")]
        ok = True
        if any(octets[3:]):
            self.problem(
                "vtep_mac_oui",
                value,
                "the least significant three bytes of an OUI must be 00:00:00",
            )
            ok = False
        if octets[0] & 1:
            self.problem(
                "vtep_mac_oui",
                value,
                "the first byte has the multicast bit set; a VTEP needs a unicast MAC",
            )
            ok = False
        return value if ok else None

    def mtu(self, block: dict[str, Any]) -> int | None:
        if "vtep_mtu" not in block or block["vtep_mtu"] is None:
            return None
        value = block["vtep_mtu"]
        if not _is_int(value):
            self.problem("vtep_mtu", value, "must be an integer")
            return None
        if not MIN_MTU <= value <= MAX_MTU:
            self.problem("vtep_mtu", value, f"must be between {MIN_MTU} and {MAX_MTU}")
            return None
        return int(value)

    # -- CIDRs ------------------------------------------------------------------------------------

    def cidr4(
        self, block: dict[str, Any], key: str, where: str, max_prefix: int
    ) -> IPv4Network | None:
        value = block.get(key)
        if value is None:
            return None
        net = self._cidr(value, where, 4)
        if net is not None and net.prefixlen > max_prefix:
            self.problem(where, value, f"is too small: the prefix must be /{max_prefix} or shorter")
            return None
        return net if isinstance(net, IPv4Network) else None

    def cidr6(
        self, block: dict[str, Any], key: str, where: str, max_prefix: int
    ) -> IPv6Network | None:
        value = block.get(key)
        if value is None:
            return None
        net = self._cidr(value, where, 6)
        if net is not None and net.prefixlen > max_prefix:
            self.problem(where, value, f"is too small: the prefix must be /{max_prefix} or shorter")
            return None
        return net if isinstance(net, IPv6Network) else None

    def _cidr(self, value: object, where: str, version: int) -> IPv4Network | IPv6Network | None:
        family = "IPv4" if version == 4 else "IPv6"
        if not isinstance(value, str) or "/" not in value:
            self.problem(where, value, f"must be an {family} CIDR such as " + _example(version))
            return None
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            self.problem(
                where, value, f"is not a valid {family} CIDR (example: {_example(version)})"
            )
            return None
        if net.version != version:
            self.problem(where, value, f"must be an {family} CIDR, not IPv{net.version}")
            return None
        if net.network_address != ipaddress.ip_interface(value).ip:
            self.problem(
                where, value, f"has host bits set; did you mean {net}? (the network address)"
            )
            return None
        return net

    # -- overlays ---------------------------------------------------------------------------------

    def overlays(self, value: object) -> list[OverlayConfig] | None:
        if value is None or value == []:
            self.problem(
                "overlays",
                value,
                "could not find any overlay configuration; specify at least one overlay",
            )
            return None
        if not isinstance(value, list):
            self.problem("overlays", _short(value), "must be a list of overlay networks")
            return None
        result: list[OverlayConfig] = []
        seen: set[str] = set()
        for index, item in enumerate(value):
            overlay = self.overlay(f"overlays[{index}]", item)
            if overlay is None:
                continue
            if overlay.name in seen:
                self.problem(
                    f"overlays[{index}].name",
                    overlay.name,
                    "duplicate overlay configuration: another overlay already has this name",
                )
                continue
            seen.add(overlay.name)
            result.append(overlay)
        for index, overlay in enumerate(result):
            self.references(f"overlays[{index}] ({overlay.name}).allow_from", overlay, seen)
        return result if len(result) == len(value) else None

    def overlay(self, where: str, item: object) -> OverlayConfig | None:
        """One network; ``where`` prefixes field names ("overlays[2]", or "" for an API body)."""
        if not isinstance(item, dict):
            self.problem(where or "(body)", _short(item), "must be a mapping with name and subnet")
            return None
        self.unknown_keys(f"{where}." if where else "", item, OVERLAY_KEYS)
        name = self.name(f"{where}.name" if where else "name", item.get("name"))
        at = f"{where} ({name})." if where and name else (f"{where}." if where else "")
        subnet = self.cidr4(item, "subnet", f"{at}subnet", max_prefix=MAX_PREFIX)
        subnet6 = self.cidr6(item, "subnet6", f"{at}subnet6", max_prefix=MAX_PREFIX6)
        prefix = self.prefix(at, item, "subnet", "prefix", subnet, MAX_PREFIX)
        prefix6 = self.prefix(at, item, "subnet6", "prefix6", subnet6, MAX_PREFIX6)
        allow_from = self.allow_from(f"{at}allow_from", item.get("allow_from", []))
        if "subnet" not in item and "subnet6" not in item:
            self.problem(
                where or "subnet", _short(item), "needs a subnet (IPv4) or a subnet6 (IPv6)"
            )
            return None
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            self.problem(f"{at}enabled", enabled, "must be true or false")
            return None
        if name is None or allow_from is None:
            return None
        if ("subnet" in item and (subnet is None or prefix is None)) or (
            "subnet6" in item and (subnet6 is None or prefix6 is None)
        ):
            return None
        return OverlayConfig(name, subnet, prefix, subnet6, prefix6, enabled, allow_from)

    def allow_from(self, where: str, value: object) -> tuple[str, ...] | None:
        """Names of the networks whose containers may reach this one's (checked for existence
        by ``references`` once every network is known)."""
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(where, _short(value), "must be a list of network names")
            return None
        if len(set(value)) != len(value):
            self.problem(where, value, "names a network more than once")
            return None
        return tuple(value)

    def references(self, where: str, overlay: OverlayConfig, names: set[str]) -> None:
        for other in overlay.allow_from:
            if other == overlay.name:
                self.problem(where, other, "names the network itself (it always reaches itself)")
            elif other not in names:
                self.problem(where, other, "is not a network (allow_from names other networks)")

    def name(self, where: str, value: object) -> str | None:
        if value is None:
            self.problem(where, None, "is required")
            return None
        if not isinstance(value, str):
            self.problem(where, value, "must be a string")
            return None
        if len(value) > MAX_NAME_LENGTH:
            self.problem(
                where,
                value,
                f"is {len(value)} characters long; at most {MAX_NAME_LENGTH} fit, because the "
                "bridge names m-<name> and d-<name> must fit Linux's 15-character interface names",
            )
            return None
        if value in RESERVED_NAMES:
            self.problem(
                where,
                value,
                f"is a reserved network name (reserved: {', '.join(RESERVED_NAMES)})",
            )
            return None
        if not NAME_PATTERN.match(value):
            self.problem(
                where,
                value,
                "may contain only letters, digits, '-', '_' and '.', and must start with a letter "
                "or digit (it becomes part of interface, file and firewall names)",
            )
            return None
        return value

    def prefix(
        self,
        where: str,
        item: dict[str, Any],
        subnet_key: str,
        prefix_key: str,
        subnet: IPv4Network | IPv6Network | None,
        max_prefix: int,
    ) -> int | None:
        value = item.get(prefix_key)
        if subnet_key not in item:
            if prefix_key in item:
                self.problem(
                    f"{where}{prefix_key}",
                    value,
                    f"is given without a {subnet_key} to carve it from",
                )
            return None
        if value is None:
            self.problem(
                f"{where}{prefix_key}",
                None,
                f"is required with {subnet_key}: it is the size of each agent's block",
            )
            return None
        if not _is_int(value):
            self.problem(f"{where}{prefix_key}", value, "must be an integer")
            return None
        if subnet is None:
            return None
        if not subnet.prefixlen <= value <= max_prefix:
            self.problem(
                f"{where}{prefix_key}",
                value,
                f"must be between the {subnet_key}'s own prefix ({subnet.prefixlen}) and "
                f"{max_prefix}",
            )
            return None
        return int(value)

    # -- overlaps ---------------------------------------------------------------------------------

    def overlaps(
        self,
        overlays: list[OverlayConfig] | None,
        vtep_subnet: IPv4Network | None,
        vtep_subnet6: IPv6Network | None,
    ) -> None:
        if overlays is None:
            return
        spaces = vtep_spaces(vtep_subnet, vtep_subnet6)
        for overlay in overlays:
            self.overlap(f"overlays ({overlay.name}).", overlay, spaces)
            spaces.extend(spaces_of(overlay))

    def overlap(self, at: str, overlay: OverlayConfig, spaces: list[tuple[str, Net]]) -> None:
        self.problems.extend(overlap_problems(at, overlay, spaces))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _example(version: int) -> str:
    return "9.0.0.0/8" if version == 4 else "fd01:b::/64"


def _short(value: object) -> object:
    text = repr(value)
    return value if len(text) <= 60 else text[:57] + "..."
