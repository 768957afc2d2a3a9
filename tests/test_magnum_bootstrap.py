"""MagnumSpawner's bootstrap through Magnum's API (recorded samples, real crypto)."""

import asyncio
import datetime
import json
import os
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config import kube_config

from magnum_spawner.common.cloud import get_cloud
from magnum_spawner.common.errors import NotFound
from magnum_spawner.magnum import api, credentials, kubeclient
from magnum_spawner.magnum.cluster import ClusterLink, ClusterNotReady, Identity

from .conftest import PASSWORD_AUTH
from .fake_magnum import CLUSTER_UUID, MAGNUM, FakeCA, FakeMagnum, magnum_error

HUB = Identity("magnum-spawner", ("system:masters",))


@pytest.fixture(autouse=True)
def forget_kubeconfig():
    """A signing makes its kubeconfig the Kubernetes clients' default: not the
    next test's."""
    yield
    kubeclient.forget()


@pytest.fixture
def magnum(cloud):
    return FakeMagnum(cloud)


def session():
    return get_cloud(auth=PASSWORD_AUTH)


@pytest.fixture
def link(tmp_path, magnum):
    made = ClusterLink(
        session, "k8s", identity=HUB,
        kubeconfig_dir=credentials.KubeconfigDir(parent=str(tmp_path)),
    )
    yield made
    made.files.remove()


def test_cluster_discovery(magnum):
    cluster = api.get_cluster(session(), "k8s")
    assert cluster["uuid"] == CLUSTER_UUID
    template = api.get_cluster_template(session(), cluster["cluster_template_id"])
    assert template["coe"] == "kubernetes"
    calls = [r for r in magnum.cloud.m.request_history if r.url.startswith(MAGNUM)]
    assert [r.url for r in calls] == [
        f"{MAGNUM}/clusters/k8s",
        f"{MAGNUM}/clustertemplates/{cluster['cluster_template_id']}",
    ]
    # on the hub's keystoneauth session: the token it logged in with
    assert all(r.headers["X-Auth-Token"] == "gAAAAA-recorded-token" for r in calls)


async def test_check_reads_address_and_nodes(link):
    info = await link.check()
    assert info.server == "https://172.24.4.6:6443"
    assert info.node_addresses == ("172.24.4.13",)
    assert info.status == "CREATE_COMPLETE"


@pytest.mark.parametrize("status, reason", [
    ("CREATE_IN_PROGRESS", "Stack CREATE started"),
    ("CREATE_FAILED", "Resource CREATE failed: OverQuota"),
    ("UPDATE_FAILED", "Timed out waiting for nodes"),
    ("DELETE_IN_PROGRESS", None),
])
async def test_cluster_not_ready_names_state_and_reason(link, magnum, status, reason):
    magnum.cluster["status"] = status
    magnum.cluster["status_reason"] = reason
    with pytest.raises(ClusterNotReady) as e:
        await link.ensure()
    message = str(e.value)
    assert message.startswith("The course's cluster is not ready")
    assert status in message
    assert (reason or "no reason given") in message
    # nothing was signed for a cluster that is not ready
    assert magnum.csrs == []


async def test_update_complete_is_ready_and_more_states_can_be(link, magnum, tmp_path):
    magnum.cluster["status"] = "UPDATE_COMPLETE"
    assert (await link.check()).status == "UPDATE_COMPLETE"
    magnum.cluster["status"] = "UPDATE_IN_PROGRESS"
    with pytest.raises(ClusterNotReady):
        await link.check()
    link.ready_states += ("UPDATE_IN_PROGRESS",)
    assert (await link.check()).status == "UPDATE_IN_PROGRESS"


async def test_unhealthy_cluster_is_not_ready(link, magnum):
    magnum.cluster["health_status"] = "UNHEALTHY"
    magnum.cluster["health_status_reason"] = {"api": "Connection refused"}
    with pytest.raises(ClusterNotReady, match="UNHEALTHY.*api: Connection refused"):
        await link.check()
    # no monitor: UNKNOWN (or nothing) is not a reason to refuse
    magnum.cluster["health_status"] = "UNKNOWN"
    await link.check()
    del magnum.cluster["health_status"]
    await link.check()


async def test_missing_cluster_is_magnum_404(link, magnum):
    magnum.cluster = magnum_error(404, "Not Found", "Cluster k8s could not be found.")
    with pytest.raises(NotFound, match="Cluster k8s could not be found"):
        await link.ensure()


@pytest.mark.parametrize("change, words", [
    ({"coe": "swarm"}, "not a Kubernetes cluster"),
    ({"tls_disabled": True}, "without TLS"),
])
async def test_template_must_be_kubernetes_with_tls(link, magnum, change, words):
    magnum.template.update(change)
    with pytest.raises(ClusterNotReady, match=words):
        await link.ensure()
    assert not os.path.exists(link.files.kubeconfig)


async def test_signed_certificate_chains_to_ca_and_carries_subject(link, magnum):
    await link.ensure()
    assert len(magnum.csrs) == 1
    csr = x509.load_pem_x509_csr(magnum.csrs[0].encode())
    cert = x509.load_pem_x509_certificate(open(link.files.cert_file, "rb").read())
    ca = x509.load_pem_x509_certificate(open(link.files.ca_file, "rb").read())
    cert.verify_directly_issued_by(ca)
    assert cert.subject == csr.subject
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "magnum-spawner"
    assert [a.value for a in cert.subject.get_attributes_for_oid(
        NameOID.ORGANIZATION_NAME)] == ["system:masters"]
    # the key the certificate is for is the one on disk, never sent to Magnum
    key_text = open(link.files.key_file).read()
    assert "PRIVATE KEY" in key_text
    assert all("PRIVATE" not in r.text for r in magnum.cloud.m.request_history
               if r.url.startswith(MAGNUM) and r.text)


async def test_kubeconfig_is_private_and_loadable(link):
    await link.ensure()
    files = link.files
    assert stat.S_IMODE(os.stat(files.path).st_mode) == 0o700
    for path in (files.kubeconfig, files.ca_file, files.cert_file, files.key_file):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert sorted(os.listdir(files.path)) == ["ca.crt", "client.crt", "client.key", "kubeconfig"]
    config = Configuration()
    await kube_config.load_kube_config(config_file=files.kubeconfig,
                                       client_configuration=config)
    assert config.host == "https://172.24.4.6:6443"
    assert (config.cert_file, config.key_file, config.ssl_ca_cert) == (
        files.cert_file, files.key_file, files.ca_file)
    files.remove()
    assert not os.path.exists(files.path)


def test_kubeconfig_dir_is_removed_at_exit(tmp_path):
    import subprocess
    import sys
    # the module alone (the package's import of JupyterHub takes seconds)
    code = (
        "import importlib.util as u\n"
        f"s = u.spec_from_file_location('c', {credentials.__file__!r})\n"
        "m = u.module_from_spec(s); s.loader.exec_module(m)\n"
        f"d = m.KubeconfigDir(parent={str(tmp_path)!r})\n"
        "d.write(server='https://h:6443', ca_pem='ca', cert_pem='c', key_text='k',"
        " cluster_name='k8s')\n"
        "print(d.path)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    made = out.stdout.strip()
    assert made.startswith(str(tmp_path))
    assert not os.path.exists(made)


async def test_signs_once_then_again_before_expiry(link, magnum):
    await link.ensure()
    await link.ensure()
    assert link.signed == 1
    # a certificate with less than renew_before left is replaced
    link.renew_before = datetime.timedelta(days=3650)
    await link.ensure()
    assert link.signed == 2
    assert len(magnum.csrs) == 2


async def test_ca_rotation_forced_resign_fetches_new_ca(link, magnum):
    await link.ensure()
    old_ca = open(link.files.ca_file).read()
    magnum.rotate_ca()
    await link.ensure(force="TLS refused")
    new_ca = open(link.files.ca_file).read()
    assert new_ca != old_ca and new_ca == magnum.ca.pem
    cert = x509.load_pem_x509_certificate(open(link.files.cert_file, "rb").read())
    cert.verify_directly_issued_by(magnum.ca.cert)


async def test_certificate_from_another_ca_is_refused(link, magnum):
    magnum.signer = FakeCA("impostor")
    with pytest.raises(ClusterNotReady) as e:
        await link.ensure()
    assert "does not chain to the cluster CA" in e.value.detail
    assert not os.path.exists(link.files.kubeconfig)


async def test_concurrent_spawns_sign_once(link, magnum):
    await asyncio.gather(*(link.ensure() for _ in range(5)))
    assert len(magnum.csrs) == 1


def test_api_address_without_scheme():
    from magnum_spawner.magnum.cluster import api_server
    assert api_server("172.24.4.3") == "https://172.24.4.3:6443"
    assert api_server("https://10.0.0.5:6443/") == "https://10.0.0.5:6443"
    assert api_server("fd00::5") == "https://[fd00::5]:6443"


async def test_admin_identity_only_for_the_grant(tmp_path, magnum):
    seen = []

    async def grant(admin_kubeconfig):
        config = json.loads(open(admin_kubeconfig).read())
        cert_file = config["users"][0]["user"]["client-certificate"]
        cert = x509.load_pem_x509_certificate(open(cert_file, "rb").read())
        seen.append((cert.subject.rfc4514_string(),
                     stat.S_IMODE(os.stat(admin_kubeconfig).st_mode)))

    made = ClusterLink(
        session, "k8s", identity=Identity("magnum-spawner"),
        admin=Identity("magnum-spawner-admin", ("system:masters",)), grant=grant,
        kubeconfig_dir=credentials.KubeconfigDir(parent=str(tmp_path)),
    )
    await made.ensure()
    assert seen == [("CN=magnum-spawner-admin,O=system:masters", 0o600)]
    # the admin's key and certificate are gone; the hub works without groups
    assert sorted(os.listdir(made.files.path)) == [
        "ca.crt", "client.crt", "client.key", "kubeconfig"]
    assert made.cert.subject.rfc4514_string() == "CN=magnum-spawner"
    made.files.remove()


async def test_failed_grant_is_a_clear_error_and_leaves_no_admin_key(tmp_path, magnum):
    async def grant(admin_kubeconfig):
        raise RuntimeError("(403) namespaces is forbidden")

    made = ClusterLink(
        session, "k8s", identity=Identity("magnum-spawner"),
        admin=Identity("magnum-spawner-admin", ("system:masters",)), grant=grant,
        kubeconfig_dir=credentials.KubeconfigDir(parent=str(tmp_path)),
    )
    with pytest.raises(ClusterNotReady, match="could not set itself up") as e:
        await made.ensure()
    assert "namespaces is forbidden" in e.value.detail
    assert os.listdir(made.files.path) == ["ca.crt"]
    made.files.remove()


async def test_without_recheck_a_signed_link_asks_magnum_nothing(link, magnum):
    await link.ensure()
    before = len(magnum.cloud.m.request_history)
    for _ in range(5):
        await link.ensure(recheck=False)
    assert len(magnum.cloud.m.request_history) == before
    # a certificate due for renewal is renewed all the same
    link.renew_before = datetime.timedelta(days=3650)
    await link.ensure(recheck=False)
    assert link.signed == 2
