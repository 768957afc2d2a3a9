"""Shared helpers of the magnum_local_driver tests (a unique module name, so
it cannot clash with another suite's helpers on sys.path)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEVSTACK = os.path.dirname(os.path.dirname(HERE))
# The driver package and the Zun driver's runtime it shares, uninstalled.
for path in (os.path.dirname(HERE), os.path.join(DEVSTACK, 'zun_local_driver')):
    if path not in sys.path:
        sys.path.insert(0, path)


def can_run_containers():
    if os.geteuid() != 0:
        return 'needs root'
    if not os.path.isdir('/sys/fs/cgroup/memory'):
        return 'needs the cgroup v1 memory hierarchy (not under ip netns exec)'
    return None
