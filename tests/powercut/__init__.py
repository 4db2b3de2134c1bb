"""A FUSE file system that loses what was not synced: power cuts for tests."""
