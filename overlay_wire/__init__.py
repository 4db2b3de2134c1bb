"""What the overlay master and its agents agree on over HTTP (see ``contract``)."""
