"""How two network configs differ (pure).

``compatibility_problems``: what replacing one by the other would invalidate (the allocator
rejects an old-format ``configure`` entry that would). ``differences``: how a config file differs
from the networks in the log (start-up and ``check-config --against`` report it).
"""

from __future__ import annotations

from overlay_master.network import NetworkConfig


def compatibility_problems(old: NetworkConfig, new: NetworkConfig) -> list[str]:
    """Why ``new`` cannot replace ``old`` without invalidating allocations (empty: it can).

    Allowed: adding overlays, enabling/disabling overlays, adding ``vtep_subnet6``, changing
    ``vtep_mtu``. Everything that existing allocations were carved from must stay as it is.
    """
    problems: list[str] = []
    if old.vtep_subnet != new.vtep_subnet:
        problems.append(f"vtep_subnet changed from {old.vtep_subnet} to {new.vtep_subnet}")
    if old.vtep_subnet6 is not None and old.vtep_subnet6 != new.vtep_subnet6:
        problems.append(f"vtep_subnet6 changed from {old.vtep_subnet6} to {new.vtep_subnet6}")
    if old.vtep_mac_oui.lower() != new.vtep_mac_oui.lower():
        problems.append(f"vtep_mac_oui changed from {old.vtep_mac_oui} to {new.vtep_mac_oui}")
    for overlay in old.overlays:
        now = new.overlay(overlay.name)
        if now is None:
            problems.append(f"overlay '{overlay.name}' is in the log but no longer in the config")
            continue
        for key in ("subnet", "prefix", "subnet6", "prefix6"):
            before, after = getattr(overlay, key), getattr(now, key)
            if before != after:
                problems.append(f"overlay '{overlay.name}' {key} changed from {before} to {after}")
    return problems


def differences(file: NetworkConfig, log: NetworkConfig) -> list[str]:
    """How a config file differs from the networks in the log, one line each (empty: it does
    not). The log wins: a replica started with a different file keeps the log's networks and
    reports these lines; networks change through the API (``overlayctl network ...``)."""
    lines: list[str] = []
    for key in ("vtep_subnet", "vtep_subnet6", "vtep_mtu"):
        in_file, in_log = getattr(file, key), getattr(log, key)
        if in_file != in_log:
            lines.append(f"{key}: {_text(in_log)} in the log, {_text(in_file)} in the file")
    if file.vtep_mac_oui.lower() != log.vtep_mac_oui.lower():
        lines.append(
            f"vtep_mac_oui: {log.vtep_mac_oui} in the log, {file.vtep_mac_oui} in the file"
        )
    for overlay in log.overlays:
        if file.overlay(overlay.name) is None:
            lines.append(f"network {overlay.name}: in the log, not in the file")
    for overlay in file.overlays:
        logged = log.overlay(overlay.name)
        if logged is None:
            lines.append(
                f"network {overlay.name}: in the file, not in the log "
                "(add it with overlayctl network add, or POST /overlay-master/networks)"
            )
            continue
        for key in ("subnet", "prefix", "subnet6", "prefix6", "enabled", "allow_from"):
            in_file, in_log = getattr(overlay, key), getattr(logged, key)
            if in_file != in_log:
                lines.append(
                    f"network {overlay.name}: {key} is {_text(in_log)} in the log, "
                    f"{_text(in_file)} in the file"
                )
    return lines


def _text(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)
