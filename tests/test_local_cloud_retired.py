"""devstack/local-cloud refuses the settings of what is retired, in a sentence that
says so, before it touches anything."""

import os
import pathlib
import subprocess

import pytest

LOCAL_CLOUD = pathlib.Path(__file__).resolve().parents[1] / "devstack" / "local-cloud"


@pytest.mark.parametrize("setting, sentence", [
    ({"LOCAL_CLOUD_MAGNUM_NODES": "standin"},
     "LOCAL_CLOUD_MAGNUM_NODES=standin: the kubelet stand-in was retired; every Magnum "
     "cluster has real nodes"),
    ({"LOCAL_CLOUD_DRIVER": "process"},
     "LOCAL_CLOUD_DRIVER=process: the process driver was retired; Zun runs on Docker"),
])
def test_a_retired_setting_is_refused_in_a_sentence(tmp_path, setting, sentence):
    cloud = tmp_path / "cloud"
    env = {**os.environ, "MAGNUM_CLOUD_DIR": str(cloud), **setting}
    done = subprocess.run([str(LOCAL_CLOUD), "status"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert sentence in done.stderr
    assert not cloud.exists()
