"""The overlay agent: registers with the masters, follows the cluster state and makes the kernel
of one network namespace match it (VXLAN device, bridges, neighbours, FDB, routes, egress NAT and
isolation between networks, CNI)."""
