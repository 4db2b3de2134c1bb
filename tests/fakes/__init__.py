"""In-memory fakes of the agent's edges (kernel, NAT, Docker Engine) and of the masters, for fast tests."""
