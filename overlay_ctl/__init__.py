"""``overlayctl``: the operator's command-line client of the overlay masters."""
