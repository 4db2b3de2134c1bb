"""Failover chaos suite: three real masters in network namespaces, a recorded workload, faults on
a seeded schedule, and a checker over the history and the replicas' final states.

Run by hand: ``scripts/chaos --seed 7 --duration 20m`` (root). The pytest entry is
``tests/chaos/test_chaos.py`` (marker ``chaos``). See docs/chaos.md.
"""
