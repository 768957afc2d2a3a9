"""Stand-ins of the local cloud for what this kernel cannot run (devstack/README.md)."""
