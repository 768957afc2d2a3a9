"""MagnumSpawner's dependencies are the ``magnum`` extra: a Zun-only hub lacks them."""

import re
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A hub without the extra: the modules KubeSpawner's side needs cannot be imported.
WITHOUT_EXTRA = """
import sys
for name in ("kubespawner", "kubernetes_asyncio"):
    sys.modules[name] = None
import magnum_spawner.zun
from magnum_spawner import ZunSpawner
print("zun ok")
try:
    import magnum_spawner.magnum
except ImportError as e:
    print("magnum:", e)
"""


def test_without_the_extra_zun_works_and_magnum_names_the_extra():
    out = subprocess.run([sys.executable, "-c", WITHOUT_EXTRA], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "zun ok"
    message = lines[1]
    assert "pip install 'magnum-spawner[magnum]'" in message
    assert "KubeSpawner" in message and "kubespawner" in message


def test_the_extra_holds_kubespawner_and_the_test_extra_pulls_it_in():
    # the installed package's metadata (make venv reinstalls on a pyproject change)
    reqs = requires("magnum-spawner")
    core = [r for r in reqs if "extra ==" not in r]
    magnum = [r for r in reqs if re.search(r"extra == .magnum.", r)]
    test = [r for r in reqs if re.search(r"extra == .test.", r)]
    assert not any("kubespawner" in r or "kubernetes" in r for r in core), core
    assert any(r.startswith("jupyterhub-kubespawner") for r in magnum), magnum
    assert any(r.startswith("kubernetes_asyncio") for r in magnum), magnum
    assert any(r.startswith("magnum-spawner[magnum]") for r in test), test
