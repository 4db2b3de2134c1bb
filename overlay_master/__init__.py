"""overlay master: the replicated allocator of the overlay network control plane.

The package is layered so that the pure core can be read (and tested) on its own:

* ``config``     parse and validate the network config (DC/OS rules plus ours)
* ``addressing`` pure IP arithmetic: VTEP addresses, MACs, agent blocks, bridge halves
* ``pool``       a free pool of numbered slots (fresh first, released oldest-first)
* ``allocator``  the pure, deterministic state machine (state + command -> result)
* ``dcos_json``  the DC/OS ``/overlay-master/state`` JSON shape
* ``changes``    which agents each revision touched (watch deltas)
* ``encoding``   snapshots -> answer bytes, encoded once per revision
* ``replicated`` / ``node``  the PySyncObj adapter and the replica (Raft <-> asyncio)
* ``replica``    the seam: what the HTTP layer needs from a replica
* ``api`` (routes), ``watch`` (the raw long-poll handler), ``metrics``, ``http_edge``,
  ``serve`` / ``cli``  the HTTP and process edges
"""
