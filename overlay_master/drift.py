"""How two network configs differ (pure): what a change would invalidate.

Used by the allocator (a ``configure`` entry that would invalidate allocations is rejected) and by
start-up (a config file checked against the log).
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
