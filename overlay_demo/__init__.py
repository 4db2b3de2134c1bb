"""The main job (``scripts/run``): the whole system on one machine.

Three overlay masters on loopback and, as root, three agents in network namespaces on a private
underlay with one test container each, attached through the agent's own CNI config by the
standard plugins; Ctrl-C removes every namespace and process it made. ``cli`` wires it, ``system``
starts and stops the pieces, ``hosts`` makes the namespaces, ``cni_runtime`` runs the plugins,
``leftovers`` clears what a crashed run left.
"""
