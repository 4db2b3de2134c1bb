"""In-memory stand-ins for the edges of the system (the Raft replica), for fast unit tests."""
