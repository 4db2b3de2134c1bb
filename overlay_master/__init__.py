"""overlay master: the replicated allocator of the overlay network control plane.

The package is layered so that the pure core can be read (and tested) on its own:

* ``config``     parse and validate the network config (DC/OS rules plus ours)
* ``addressing`` pure IP arithmetic: VTEP addresses, MACs, agent blocks, bridge halves
* ``pool``       a free pool of numbered slots (fresh first, released oldest-first)
* ``allocator``  the pure, deterministic state machine (state + command -> result)
* ``dcos_json``  the DC/OS ``/overlay-master/state`` JSON shape
* ``replicated`` / ``node`` / ``api`` / ``cli``  the I/O edges
"""
