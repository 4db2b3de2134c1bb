"""The reconciler against real kernels: three agent namespaces on an underlay bridge, fed
cluster-state documents directly; checked with independent ``ip``/``bridge``/``nft`` output and
with containers attached by the real CNI plugins."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.netns.harness import (
    LocalAgent,
    cluster,
    expected_peer_objects,
    fdb,
    local_agent,
    local_agents,
    neighbours,
    routes,
)
from tests.netns.topology import Bed, add_container, ipj, ping_check, sh
from tests.waiting import wait_until

pytestmark = pytest.mark.netns


@pytest.fixture
def trio(bed: Bed) -> Iterator[list[LocalAgent]]:
    with local_agents(bed) as agents:
        yield agents


def test_three_agents_program_kernel_and_containers_ping_over_vxlan(
    bed: Bed, trio: list[LocalAgent]
) -> None:
    doc = cluster(bed)
    for a in trio:
        outcome = a.reconcile(doc)
        assert outcome.converged, outcome
        assert {s.status for s in outcome.statuses.values()} == {"STATUS_OK"}

    a1 = trio[0].ns
    (link,) = ipj(a1, "-d", "link", "show", "vtep1024")
    data = link["linkinfo"]["info_data"]
    assert (data["id"], data["port"], data["learning"]) == (1024, 64000, False)
    assert (link["address"], link["mtu"]) == ("70:b3:d5:80:00:01", 1450)
    assert {a["local"] for a in ipj(a1, "-4", "addr", "show", "vtep1024")[0]["addr_info"]} == {
        "44.128.0.1"
    }
    (m,) = ipj(a1, "-4", "addr", "show", "m-dcos")
    assert [(x["local"], x["prefixlen"]) for x in m["addr_info"]] == [("9.0.0.1", 27)]
    (d,) = ipj(a1, "-4", "addr", "show", "d-dcos")
    assert [(x["local"], x["prefixlen"]) for x in d["addr_info"]] == [("9.0.0.33", 27)]
    assert (
        sh("ip", "netns", "exec", a1, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    )
    for a in trio:
        r, n, f = expected_peer_objects(bed, a.k, (1, 2, 3))
        assert (routes(a.ns), neighbours(a.ns), fdb(a.ns)) == (r, n, f)

    # count VXLAN packets crossing the underlay bridge
    sh(
        "ip",
        "netns",
        "exec",
        bed.underlay,
        "nft",
        "-f",
        "-",
        input=(
            "table bridge probe { chain seen { type filter hook forward priority 0; "
            "udp dport 64000 counter; }; }"
        ),
    )
    containers = [add_container(bed, a.ns, a.conf(), f"c{a.k}") for a in trio]
    assert [c.error for c in containers] == [None, None, None]
    assert [c.ip for c in containers] == ["9.0.0.2", "9.0.0.66", "9.0.0.130"]
    for src in containers:
        for dst in containers:
            if src is not dst:
                assert dst.ip is not None
                wait_until(f"{src.ns} -> {dst.ip}", ping_check(src.ns, dst.ip), timeout=5)
    probe = json.loads(
        sh(
            "ip", "netns", "exec", bed.underlay, "nft", "-j", "list", "table", "bridge", "probe"
        ).stdout
    )
    counters = [
        e["counter"]
        for i in probe["nftables"]
        if "rule" in i
        for e in i["rule"]["expr"]
        if "counter" in e
    ]
    assert counters and counters[0]["packets"] >= 6


def test_both_cni_forms_are_what_the_plugins_run_and_share_one_pool(bed: Bed) -> None:
    bed.build(agents=1)
    a1 = local_agent(bed, 1, mesos_cni=True)
    try:
        a1.reconcile(cluster(bed, (1,)))
        conflist = json.loads(a1.conf().read_text())
        assert (conflist["cniVersion"], [p["type"] for p in conflist["plugins"]]) == (
            "1.0.0",
            ["bridge", "portmap"],
        )
        conf = json.loads((bed.root / "a1" / "mesos" / "dcos.conf").read_text())
        assert conf == {"cniVersion": "1.0.0", "name": "dcos", **conflist["plugins"][0]}
        assert (conf["bridge"], conf["isGateway"], conf["ipMasq"], conf["hairpinMode"]) == (
            "m-dcos",
            True,
            False,
            True,
        )
        assert conf["mtu"] == 1450
        assert conf["ipam"]["ranges"] == [[{"subnet": "9.0.0.0/27", "gateway": "9.0.0.1"}]]
        assert conf["ipam"]["dataDir"] == str(a1.data_dir)
        c1 = add_container(bed, a1.ns, a1.conf(), "c1")
        c2 = add_container(bed, a1.ns, bed.root / "a1" / "mesos" / "dcos.conf", "c2")
        assert (c1.error, c2.error) == (None, None)
        assert (c1.ip, c2.ip) == ("9.0.0.2", "9.0.0.3")  # one pool: both forms share the leases
        (eth0,) = ipj(c1.ns, "link", "show", "eth0")
        assert eth0["mtu"] == 1450
        assert {p.name for p in (a1.data_dir / "dcos").iterdir()} >= {"9.0.0.2", "9.0.0.3"}
        # the plugin found our bridge and kept its gateway: no second address, no new bridge
        (m,) = ipj(a1.ns, "-4", "addr", "show", "m-dcos")
        assert [x["local"] for x in m["addr_info"]] == ["9.0.0.1"]
        wait_until("c1 -> c2 on one bridge", ping_check(c1.ns, "9.0.0.3"), timeout=5)
    finally:
        a1.close()
