"""A minimal CNI runtime: attach a network namespace the way a container runtime does.

Either file an agent writes works: a ``.conflist`` (the CNI spec's configuration list: ADD runs
the plugins in order, each given the previous one's result as ``prevResult``; DEL runs them in
reverse, each given the ADD's final result, as libcni does from its cache) or a ``.conf`` (one
plugin; DC/OS's form). Each plugin gets its own entry plus the list's ``name`` and
``cniVersion``. The plugins run inside the agent's namespace (``ip netns exec``), so the bridge
and the host end of the veth land there and the container's end in the container namespace.
A failed ADD is undone with DEL (a bridge plugin that fails after making the veth leaves it).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overlay_demo.errors import CniError

CNI_PATH = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
SUFFIXES = (".conflist", ".conf")  # the list first: what the agent writes for current runtimes
PLUGIN_TIMEOUT = 60.0


@dataclass(frozen=True)
class NetworkConfig:
    name: str
    cni_version: str
    plugins: tuple[Mapping[str, Any], ...]

    @classmethod
    def parse(cls, text: str, source: str) -> NetworkConfig:
        doc = _json_object(text, source)
        plugins = doc.get("plugins", [doc])
        if not isinstance(plugins, list) or not plugins:
            raise CniError(f"{source}: 'plugins' must be a non-empty list")
        for plugin in plugins:
            if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str):
                raise CniError(f"{source}: every plugin needs a 'type' string")
        name, version = doc.get("name"), doc.get("cniVersion")
        if not isinstance(name, str) or not isinstance(version, str):
            raise CniError(f"{source}: 'name' and 'cniVersion' must be strings")
        return cls(name, version, tuple(plugins))

    @classmethod
    def load(cls, path: Path) -> NetworkConfig:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise CniError(f"reading {path}: {e}") from e
        return cls.parse(text, str(path))

    def plugin_input(self, i: int, prev_result: Mapping[str, Any] | None) -> str:
        """What plugin ``i`` reads on stdin."""
        conf = {**self.plugins[i], "name": self.name, "cniVersion": self.cni_version}
        if prev_result is not None:
            conf["prevResult"] = prev_result
        return json.dumps(conf)


def find_config(cni_dir: Path, network: str) -> Path | None:
    """The agent's config for ``network`` in ``cni_dir``, a list preferred to a single plugin."""
    for suffix in SUFFIXES:
        path = cni_dir / f"{network}{suffix}"
        if path.is_file():
            return path
    return None


@dataclass(frozen=True)
class Attachment:
    network: NetworkConfig
    host_ns: str
    container_id: str
    netns: str
    ifname: str
    result: Mapping[str, Any]

    @property
    def address(self) -> str:
        """The container's first IPv4 address, without its prefix length."""
        for entry in self.result.get("ips", []):
            address = str(entry.get("address", "")).split("/")[0]
            if "." in address:
                return address
        raise CniError(f"{self.container_id}: the CNI result has no IPv4 address: {self.result}")


def attach(
    network: NetworkConfig, host_ns: str, container_id: str, netns: str, ifname: str = "eth0"
) -> Attachment:
    """CNI ADD through every plugin; on a failure, DEL what was done and raise."""
    result: Mapping[str, Any] = {}
    for i in range(len(network.plugins)):
        try:
            result = _run("ADD", network, i, result or None, host_ns, container_id, netns, ifname)
        except CniError:
            _delete(network, range(i, -1, -1), result or None, host_ns, container_id, netns, ifname)
            raise
    return Attachment(network, host_ns, container_id, netns, ifname, result)


def detach(attachment: Attachment) -> list[str]:
    """CNI DEL through every plugin in reverse; the problems, if any (every plugin still runs)."""
    a = attachment
    order = range(len(a.network.plugins) - 1, -1, -1)
    return _delete(a.network, order, a.result, a.host_ns, a.container_id, a.netns, a.ifname)


def _delete(
    network: NetworkConfig,
    order: Sequence[int],
    result: Mapping[str, Any] | None,
    host_ns: str,
    container_id: str,
    netns: str,
    ifname: str,
) -> list[str]:
    problems = []
    for i in order:
        try:
            _run("DEL", network, i, result, host_ns, container_id, netns, ifname)
        except CniError as e:
            problems.append(str(e))
    return problems


def _run(
    command: str,
    network: NetworkConfig,
    i: int,
    prev_result: Mapping[str, Any] | None,
    host_ns: str,
    container_id: str,
    netns: str,
    ifname: str,
) -> Mapping[str, Any]:
    plugin = str(network.plugins[i]["type"])
    env = {
        **os.environ,
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": f"/var/run/netns/{netns}",
        "CNI_IFNAME": ifname,
        "CNI_PATH": str(CNI_PATH),
    }
    what = f"CNI {command} {plugin} for {container_id} on {network.name}"
    try:
        done = subprocess.run(
            ["ip", "netns", "exec", host_ns, str(CNI_PATH / plugin)],
            input=network.plugin_input(i, prev_result),
            env=env,
            capture_output=True,
            text=True,
            timeout=PLUGIN_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CniError(f"{what}: {e}") from e
    if done.returncode != 0:
        raise CniError(f"{what}: {_plugin_error(done.stdout) or done.stderr.strip()}")
    return _json_object(done.stdout, f"{what}: its result") if command == "ADD" else {}


def _plugin_error(stdout: str) -> str:
    """A plugin reports failure as ``{"code": N, "msg": ..., "details": ...}`` on stdout."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        return stdout.strip()
    if not isinstance(doc, dict):
        return stdout.strip()
    return " ".join(str(doc[k]) for k in ("msg", "details") if doc.get(k)) or stdout.strip()


def _json_object(text: str, source: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise CniError(f"{source}: not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise CniError(f"{source}: expected a JSON object")
    return doc
