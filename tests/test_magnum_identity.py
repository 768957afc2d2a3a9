"""Who MagnumSpawner is on its cluster: the subjects it asks Magnum to sign, the
configuration its Kubernetes clients use (in a pod or not), and its key files."""

import os
import signal
import subprocess
import sys

import pytest
from cryptography import x509

from magnum_spawner.magnum import credentials, rbac

from .fake_magnum import FakeCA, FakeMagnum
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


# -- in a pod: the pod's own configuration is never used -----------------------

@pytest.fixture
def in_a_pod(tmp_path, monkeypatch):
    """The process as a pod sees it: its service account's token and CA, and its
    cluster's API in the environment (another cluster than Magnum's, or the same)."""
    from kubernetes_asyncio.config import incluster_config

    token = tmp_path / "sa-token"
    token.write_text("pod-service-account-token")
    ca = tmp_path / "sa-ca.crt"
    ca.write_text(FakeCA("pod-cluster").pem)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")


@pytest.mark.parametrize("least_privilege", [True, False])
async def test_in_a_pod_the_hub_works_on_magnums_cluster_as_itself(
        cloud, granted, in_a_pod, least_privilege):
    from kubespawner.clients import shared_client

    FakeMagnum(cloud)
    # KubeSpawner's __init__ loads its configuration: in a pod, the pod's
    spawner = make(kube_least_privilege=least_privilege)
    await spawner.ensure_cluster()
    files = spawner.cluster_link().files
    # the spawner's client, another spawner's, and one made later (a reflector's)
    for api in (spawner.api, make("bob").api, shared_client("RbacAuthorizationV1Api")):
        config = api.api_client.configuration
        assert config.host == "https://172.24.4.6:6443"  # Magnum's api_address
        assert (config.cert_file, config.key_file, config.ssl_ca_cert) == (
            files.cert_file, files.key_file, files.ca_file)
        # never the pod's service account token
        assert not config.api_key and config.refresh_api_key_hook is None


async def test_kubespawners_own_settings_never_move_the_hub_off_its_cluster(
        cloud, granted):
    """Outside a pod KubeSpawner's load_config, run again by a later spawner's
    __init__, loads the hub's kubeconfig with ``k8s_api_host`` on top."""
    from kubespawner.clients import shared_client

    FakeMagnum(cloud)
    await make(k8s_api_host="https://elsewhere:6443").ensure_cluster()
    bob = make("bob", k8s_api_host="https://elsewhere:6443")
    await bob.ensure_cluster()
    for api in (bob.api, shared_client("RbacAuthorizationV1Api")):
        assert api.api_client.configuration.host == "https://172.24.4.6:6443"


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


def test_a_stale_directory_another_hub_removes_meanwhile_is_passed_over(tmp_path, monkeypatch):
    # Two hubs starting at once: the other removes a dead hub's directory
    # between this one's listing and its look at the entry.
    gone = tmp_path / f"{credentials.PREFIX}999999999-x"
    gone.mkdir()
    kept = tmp_path / f"{credentials.PREFIX}999999998-y"
    kept.mkdir()
    real_scandir = os.scandir

    def listing_then_removal(path):
        entries = list(real_scandir(path))
        os.rmdir(gone)
        return iter(entries)

    monkeypatch.setattr(credentials.os, "scandir", listing_then_removal)
    credentials.remove_stale(str(tmp_path))  # no FileNotFoundError
    assert not kept.exists()
