"""The local cloud's own smoke test, ``devstack/smoke.py``, as part of ``make e2e``.

It checks the cloud without the spawner: a token, Zun's version range, a Cinder
volume created, found and deleted, a container Running with and without a
volume mounted, both deleted with ``?stop=true``.  When it fails, the step it
prints says which service is wrong before the spawner's tests say it more
vaguely.
"""

import os
import subprocess
import sys

import pytest

from .conftest import CLOUD_DIR, REPO, local_only

pytestmark = pytest.mark.localcloud


@local_only
def test_the_local_cloud_passes_its_smoke_test(local_cloud):
    # the unit tests' fixture points OS_CLIENT_CONFIG_FILE at an empty file
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(local_cloud.clouds_yaml)}
    out = subprocess.run(
        [sys.executable, str(REPO / "devstack" / "smoke.py"), "--cloud-dir", str(CLOUD_DIR)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
