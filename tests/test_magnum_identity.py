"""Who MagnumSpawner is on its cluster: the subjects it asks Magnum to sign, the
configuration its Kubernetes clients use (in a pod or not), and its key files."""

import os
import signal
import subprocess
import sys

import pytest
from cryptography import x509

from magnum_spawner.magnum import credentials, rbac

from .fake_magnum import FakeMagnum
from .test_magnum_spawner import fresh_link, make  # noqa: F401 (an autouse fixture)


def subjects(magnum):
    """The subjects of the CSRs Magnum was asked to sign, in order."""
    return [x509.load_pem_x509_csr(c.encode()).subject.rfc4514_string()
            for c in magnum.csrs]


@pytest.fixture
def granted(monkeypatch):
    """rbac.grant as the hub calls it (the namespace and user it grants)."""
    calls = []

    async def grant(admin_kubeconfig, namespace, user):
        calls.append((namespace, user))

    monkeypatch.setattr(rbac, "grant", grant)
    return calls


async def test_least_privilege_signs_masters_only_for_the_grant(cloud, granted):
    magnum = FakeMagnum(cloud)
    spawner = make(hub_id="physics-101")
    await spawner.ensure_cluster()
    admin, working = subjects(magnum)
    # Kubernetes reads O as groups: system:masters is cluster-admin
    assert admin == "CN=magnum-spawner:physics-101-admin,O=system:masters"
    assert working == "CN=magnum-spawner:physics-101"
    assert granted == [("physics-101", "magnum-spawner:physics-101")]
    # the certificate the hub keeps and works with is the one without groups
    files = spawner.cluster_link().files
    cert = x509.load_pem_x509_certificate(open(files.cert_file, "rb").read())
    assert cert.subject.rfc4514_string() == working
    assert sorted(os.listdir(files.path)) == [
        "ca.crt", "client.crt", "client.key", "kubeconfig"]


async def test_without_least_privilege_the_hub_is_cluster_admin(cloud, granted):
    magnum = FakeMagnum(cloud)
    spawner = make(hub_id="physics-101", kube_least_privilege=False)
    await spawner.ensure_cluster()
    assert subjects(magnum) == ["CN=magnum-spawner:physics-101,O=system:masters"]
    assert granted == []


# -- the key files of a hub that was killed ---------------------------------------

MAKE_AND_DIE = """
import importlib.util as u, os, signal
s = u.spec_from_file_location('c', {module!r})
m = u.module_from_spec(s); s.loader.exec_module(m)
d = m.KubeconfigDir(parent={parent!r})
d.write(server='https://h:6443', ca_pem='ca', cert_pem='c', key_text='KEY',
        cluster_name='k8s')
print(d.path, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no atexit: as a hub killed with -9
"""


def test_a_killed_hubs_key_is_removed_by_the_next_start(tmp_path):
    code = MAKE_AND_DIE.format(module=credentials.__file__, parent=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == -signal.SIGKILL
    dead = out.stdout.strip()
    assert open(os.path.join(dead, "client.key")).read() == "KEY"
    # a directory of a hub that still runs (this process) is left alone
    alive = credentials.KubeconfigDir(parent=str(tmp_path))
    other = tmp_path / "magnum-spawner-not-ours"
    other.mkdir()
    try:
        credentials.KubeconfigDir(parent=str(tmp_path)).remove()
        assert not os.path.exists(dead)
        assert os.path.isdir(alive.path) and other.is_dir()
    finally:
        alive.remove()
