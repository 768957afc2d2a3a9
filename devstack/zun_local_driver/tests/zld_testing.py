"""Shared helpers of the zun_local_driver tests (a unique module name, so
it cannot clash with another suite's conftest/helpers on sys.path)."""
import os

import pytest

CGROUP_ROOT = '/sys/fs/cgroup'


def _can_run_containers():
    if os.geteuid() != 0:
        return 'needs root'
    if not os.path.isdir(os.path.join(CGROUP_ROOT, 'memory')):
        return 'needs the cgroup v1 memory hierarchy'
    return None


needs_root = pytest.mark.skipif(_can_run_containers() is not None,
                                reason=str(_can_run_containers()))
