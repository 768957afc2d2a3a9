"""MagnumSpawner end to end: upstream Magnum 23 and a real kube-apiserver 1.20.

The local cloud runs Magnum with the local cluster driver (issue 11): a cluster
is a real kube-apiserver with a kubelet stand-in that runs each pod as
processes (cgroup limits, its own loopback address as pod IP, claims as Cinder
volumes).  A real JupyterHub with ``spawner_class = "magnum"`` starts servers on
it; checks go through clients independent of the spawner: openstacksdk for
Magnum, kubernetes_asyncio with the test's own Magnum-signed admin certificate.
"""

import asyncio
import base64
import os
import time
import uuid

import pytest

from .conftest import IMAGE, magnum_csr, require_magnum, wait_for

TEMPLATE_IMAGE = "k8s-local-v1.20.2"  # devstack/glance_stub.py
FLAVORS = {
    "tiny": {"cpu": 0.5, "memory": 128},
    "small": {"cpu": 0.5, "memory": 512},
    "standard": {"cpu": 1, "memory": 1024},
}


class Magnum:
    """Clusters made and checked with openstacksdk and kubernetes_asyncio."""

    def __init__(self, cloud, tmp_dir):
        self.cloud = cloud
        self.cim = cloud.sdk.container_infrastructure_management
        self.tmp_dir = tmp_dir
        self.name = "e2e-ms-%s" % uuid.uuid4().hex[:6]
        self.template = self.cim.create_cluster_template(
            name=self.name, image_id=TEMPLATE_IMAGE, coe="kubernetes",
            server_type="vm", tls_disabled=False, public=False)
        self.clusters = []
        self._admin = None

    def create(self, name, wait=True):
        cluster = self.cim.create_cluster(
            name=name, cluster_template_id=self.template.id,
            master_count=1, node_count=1)
        self.clusters.append(cluster.id)
        if wait:
            return wait_for(lambda: self.finished(cluster.id), 240, 1,
                            f"cluster {name} to leave CREATE_IN_PROGRESS")
        return cluster

    def finished(self, cluster_id):
        if self._gone(cluster_id):
            return None
        c = self.cim.get_cluster(cluster_id)
        return None if c.status.endswith("IN_PROGRESS") else c

    def admin(self, cluster):
        """CoreV1Api as a system:masters user of the test's own (not the hub's)."""
        from kubernetes_asyncio import client, config

        ca = self.cim.get_cluster_certificate(cluster.id).pem
        csr, key = magnum_csr("e2e-admin", "system:masters")
        cert = self.cim.create_cluster_certificate(cluster_uuid=cluster.id, csr=csr).pem
        b64 = lambda t: base64.b64encode(t.encode()).decode()  # noqa: E731
        conf = {
            "apiVersion": "v1", "kind": "Config", "current-context": "e2e",
            "clusters": [{"name": "c", "cluster": {
                "server": cluster.api_address, "certificate-authority-data": b64(ca)}}],
            "users": [{"name": "e2e", "user": {
                "client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "c", "user": "e2e"}}],
        }

        async def make():
            cfg = client.Configuration()
            await config.load_kube_config_from_dict(conf, client_configuration=cfg)
            return client.CoreV1Api(client.ApiClient(configuration=cfg))

        return self.cloud.run(make())

    def delete_all(self):
        for cluster_id in self.clusters:
            wait_for(lambda: self.finished(cluster_id) is not None
                     or self._gone(cluster_id), 240, 1, "cluster to settle")
            if not self._gone(cluster_id):
                self.cim.delete_cluster(cluster_id)
            wait_for(lambda: self._gone(cluster_id), 180, 1, "cluster to be deleted")
        self.cim.delete_cluster_template(self.template.id)

    def _gone(self, cluster_id):
        import openstack.exceptions

        try:
            self.cim.get_cluster(cluster_id)
        except openstack.exceptions.NotFoundException:
            return True
        except openstack.exceptions.BadRequestException as e:
            # Magnum 23 answers 400 "No Cluster found for <uuid>" once it is gone
            if "No Cluster found" in str(e):
                return True
            raise
        return False


@pytest.fixture(scope="module")
def magnum(local_cloud, tmp_path_factory):
    require_magnum(local_cloud)
    m = Magnum(local_cloud, str(tmp_path_factory.mktemp("magnum")))
    yield m
    m.delete_all()


@pytest.fixture(scope="module")
def cluster(magnum):
    c = magnum.create(magnum.name)
    assert c.status == "CREATE_COMPLETE", c.status_reason
    return c


@pytest.fixture(scope="module")
def admin(magnum, cluster):
    return magnum.admin(cluster)


def hub_config(cluster_name):
    """The demo's MagnumSpawner settings (etc/local_magnum_config.py), our flavors."""
    from .conftest import REPO

    return "\n".join([
        "import os",
        f"os.environ['LOCAL_MAGNUM_CLUSTER'] = {cluster_name!r}",
        f"load_subconfig({str(REPO / 'etc' / 'local_magnum_config.py')!r})",
        f"c.MagnumSpawner.flavors = {FLAVORS!r}",
        'c.MagnumSpawner.default_flavor = "small"',
    ])


@pytest.fixture(scope="module")
def magnum_hub(local_cloud, cluster, tmp_path_factory):
    from .conftest import HubProcess

    h = HubProcess(tmp_path_factory.mktemp("magnum-hub"), local_cloud,
                   hub_config(cluster.name))
    h.start()
    yield h
    h.shutdown()


def pod(admin, local_cloud, namespace, name):
    from kubernetes_asyncio.client.rest import ApiException

    try:
        return local_cloud.run(admin.read_namespaced_pod(name, namespace))
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def test_flavor_limits_on_the_pod_and_a_cell_runs(magnum_hub, admin, local_cloud):
    magnum_hub.start_server("ada", options={"flavor": "standard"})
    p = pod(admin, local_cloud, magnum_hub.hub_id, "jupyter-ada")
    assert p is not None and p.status.phase == "Running"
    res = p.spec.containers[0].resources
    # KubeSpawner sends memory in bytes
    assert res.limits == res.requests == {"cpu": "1", "memory": str(1024 * 2**20)}
    assert p.metadata.labels["hub.jupyter.org/flavor"] == "standard"
    out = magnum_hub.run_cell("ada", "print(6 * 7)")
    assert out["stdout"].strip() == "42", out


def test_a_restarted_hub_reattaches_to_its_pods(magnum_hub, admin, local_cloud):
    # the new process signs its own certificate at its first poll, before any start
    if not (magnum_hub.server("ada") or {}).get("ready"):
        magnum_hub.start_server("ada")
    before = pod(admin, local_cloud, magnum_hub.hub_id, "jupyter-ada").metadata.uid
    magnum_hub.restart()
    server = wait_for(lambda: magnum_hub.server("ada"), 30, 1, "the server after restart")
    assert server["ready"]
    assert magnum_hub.server_api("GET", "ada", "api/status").status_code == 200
    assert pod(admin, local_cloud, magnum_hub.hub_id, "jupyter-ada").metadata.uid == before
    magnum_hub.stop_server("ada")


def test_home_survives_stop_and_start_and_stop_deletes_the_pod(
    magnum_hub, admin, local_cloud
):
    magnum_hub.start_server("grace")
    out = magnum_hub.run_cell(
        "grace", "open('/home/jovyan/notes.txt', 'w').write('kept'); print('ok')")
    assert out["stdout"].strip() == "ok", out
    magnum_hub.stop_server("grace")
    assert pod(admin, local_cloud, magnum_hub.hub_id, "jupyter-grace") is None
    claims = local_cloud.run(admin.list_namespaced_persistent_volume_claim(
        magnum_hub.hub_id)).items
    assert "home-grace" in {c.metadata.name for c in claims}
    magnum_hub.start_server("grace")
    out = magnum_hub.run_cell("grace", "print(open('/home/jovyan/notes.txt').read())")
    assert out["stdout"].strip() == "kept", out
    magnum_hub.stop_server("grace")


# -- in-process spawners (one cluster per process: the not-ready test goes first) --

def make_spawner(local_cloud, cluster_name, username, **config):
    from jupyterhub.objects import Hub, Server
    from traitlets.config import Config

    from magnum_spawner.magnum import MagnumSpawner
    from tests.helpers import FakeUser

    class User(FakeUser):
        id = 1

    os.environ["OS_CLIENT_CONFIG_FILE"] = str(local_cloud.clouds_yaml)
    cfg = Config()
    cfg.MagnumSpawner.cloud = local_cloud.cloud
    cfg.MagnumSpawner.hub_id = "e2e-inproc"
    cfg.MagnumSpawner.magnum_cluster = cluster_name
    cfg.MagnumSpawner.image = IMAGE
    cfg.MagnumSpawner.flavors = FLAVORS
    cfg.MagnumSpawner.home_volume_size = 0
    cfg.MagnumSpawner.start_timeout = 90
    cfg.MagnumSpawner.wait_for_answer = False  # some programs here are not servers
    cfg.MagnumSpawner.delete_grace_period = 1
    for key, value in config.items():
        setattr(cfg.MagnumSpawner, key, value)
    async def construct():
        # as in the hub: inside the event loop (KubeSpawner makes its client there)
        return MagnumSpawner(
            user=User(username), hub=Hub(), config=cfg,
            api_token="e2e-no-hub", oauth_client_id=f"jupyterhub-user-{username}",
        )

    spawner = local_cloud.run(construct())
    spawner.server = Server(base_url=f"/user/{username}/")
    return spawner


def start(local_cloud, spawner):
    """start(), and the address kept as the hub keeps it (poll() compares)."""
    from urllib.parse import urlparse

    url = urlparse(local_cloud.run(spawner.start()))
    spawner.server.ip, spawner.server.port = url.hostname, url.port


def test_a_cluster_not_ready_is_the_spawn_page_message(magnum, local_cloud):
    from jupyterhub.spawner import SpawnException

    from magnum_spawner.magnum import spawner as module

    module.reset_link()
    creating = magnum.create(magnum.name + "-late", wait=False)
    # visible to the API (and still being created: that takes ~8-12 s here)
    wait_for(lambda: magnum.cim.get_cluster(creating.id), 10, 0.2, "the new cluster")
    spawner = make_spawner(local_cloud, creating.name, "late")
    with pytest.raises(SpawnException) as e:
        local_cloud.run(spawner.start())
    assert "the course's cluster is not ready" in e.value.message.lower()
    assert "CREATE_IN_PROGRESS" in e.value.message
    module.reset_link()


HOG = (
    "import time; time.sleep(1); blocks = []\n"
    "while True: blocks.append(bytearray(16 * 2**20)); time.sleep(0.01)\n"
)


def test_past_the_flavors_memory_the_server_is_oom_killed_and_poll_says_so(
    cluster, local_cloud
):
    spawner = make_spawner(local_cloud, cluster.name, "hogger", cmd=["python3", "-c", HOG])
    spawner.user_options = {"flavor": "tiny"}
    start(local_cloud, spawner)
    status = wait_for(lambda: local_cloud.run(spawner.poll()), 60, 0.5, "the OOM kill")
    assert status == 137  # SIGKILL from the kernel's OOM killer
    local_cloud.run(spawner.stop(now=True))


def test_the_hubs_working_certificate_reaches_its_namespace_only(cluster, local_cloud):
    from kubernetes_asyncio import client, config
    from kubernetes_asyncio.client.rest import ApiException

    from magnum_spawner.magnum import spawner as module

    spawner = make_spawner(local_cloud, cluster.name, "checker")
    local_cloud.run(spawner.ensure_cluster())
    kubeconfig = module.kubeconfig_files().kubeconfig

    async def statuses():
        cfg = client.Configuration()
        await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        async with client.ApiClient(cfg) as api:
            core = client.CoreV1Api(api)
            found = {}
            for what, call in [
                ("own pods", lambda: core.list_namespaced_pod(spawner.namespace)),
                ("default pods", lambda: core.list_namespaced_pod("default")),
                ("kube-system secrets", lambda: core.list_namespaced_secret("kube-system")),
                ("nodes", core.list_node),
            ]:
                try:
                    await call()
                    found[what] = 200
                except ApiException as e:
                    found[what] = e.status
            return found

    assert local_cloud.run(statuses()) == {
        "own pods": 200, "default pods": 403, "kube-system secrets": 403, "nodes": 403,
    }


def test_poll_of_n_servers_makes_no_api_call(cluster, local_cloud):
    """KubeSpawner's reflector: one watch for all pods, poll() reads it."""
    from kubernetes_asyncio.client import rest

    sleepers = [
        make_spawner(local_cloud, cluster.name, f"sleeper{i}",
                     cmd=["python3", "-c", "import time; time.sleep(600)"])
        for i in range(4)
    ]
    for s in sleepers:
        start(local_cloud, s)
    from keystoneauth1 import session as ks_session

    calls = []
    original = rest.RESTClientObject.request
    original_ks = ks_session.Session.request

    async def counted(self, method, url, *args, **kwargs):
        calls.append((method, url))
        return await original(self, method, url, *args, **kwargs)

    def counted_ks(self, url, method, *args, **kwargs):
        calls.append((method, url))
        return original_ks(self, url, method, *args, **kwargs)

    # Kubernetes (kubernetes_asyncio) and OpenStack (keystoneauth: Magnum) calls
    rest.RESTClientObject.request = counted
    ks_session.Session.request = counted_ks
    try:
        started = time.monotonic()
        results = local_cloud.run(poll_all(sleepers))
        took = time.monotonic() - started
    finally:
        rest.RESTClientObject.request = original
        ks_session.Session.request = original_ks
    assert results == [None] * len(sleepers)
    assert calls == []
    print(f"poll() of {len(sleepers)} servers: 0 API calls, {took * 1000:.1f} ms")
    for s in sleepers:
        local_cloud.run(s.stop(now=True))


async def poll_all(spawners):
    return await asyncio.gather(*(s.poll() for s in spawners))
