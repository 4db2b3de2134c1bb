"""In-memory stand-ins for the edges of the system (the Raft replica; the agent's kernel, NAT and
Docker Engine; the masters), for fast unit tests."""
