import os
import shutil
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from zun_local_driver import cgroups  # noqa: E402
from zun_local_driver import runtime  # noqa: E402

from zld_testing import CGROUP_ROOT  # noqa: E402


@pytest.fixture
def cgroup_parent():
    name = 'zun-local-test-%s' % uuid.uuid4().hex[:8]
    yield name
    for ctrl in cgroups.CgroupSet.CONTROLLERS + ('cpuset',):
        path = os.path.join(CGROUP_ROOT, ctrl, name)
        if os.path.isdir(path):
            for child in os.listdir(path):
                sub = os.path.join(path, child)
                if os.path.isdir(sub):
                    cgroups.CgroupSet._rmdir(sub)
            cgroups.CgroupSet._rmdir(path)


@pytest.fixture
def state_dir(tmp_path):
    d = tmp_path / 'containers'
    d.mkdir()
    yield str(d)
    # Kill anything a failed test left running.
    for cdir in runtime.list_dirs(str(d)):
        if cdir.child_alive():
            cdir.signal(9)
            cdir.wait_exited(5)
        cdir.wait_supervisor_gone(5)
    shutil.rmtree(str(d), ignore_errors=True)
