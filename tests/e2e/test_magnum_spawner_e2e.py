"""MagnumSpawner end to end: upstream Magnum 23 and a real kube-apiserver 1.20.

The local cloud runs Magnum with the local cluster driver (issue 11): a cluster
is a real kube-apiserver with real nodes (containerd, kubelet, kube-proxy,
kube-scheduler; issue 20) that pull the notebook image from the local registry,
claims as Cinder volumes.  A real JupyterHub with ``spawner_class = "magnum"``
starts servers on it; checks go through clients independent of the spawner:
openstacksdk for Magnum, kubernetes_asyncio with the test's own Magnum-signed admin
certificate.
"""

import asyncio
import base64
import ipaddress
import os
import signal
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import (CLOUD_DIR, MAGNUM_IMAGE, REPO, LocalCloud, magnum_csr, require_magnum,
                       wait_for)

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

    def create(self, name, wait=True, node_count=1):
        cluster = self.cim.create_cluster(
            name=name, cluster_template_id=self.template.id,
            master_count=1, node_count=node_count)
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
    # two nodes, so that servers spread and one node can fail
    c = magnum.create(magnum.name, node_count=2)
    assert c.status == "CREATE_COMPLETE", c.status_reason
    return c


@pytest.fixture(scope="module")
def admin(magnum, cluster):
    return magnum.admin(cluster)


def hub_config(cluster_name):
    """The demo's MagnumSpawner settings (etc/local_magnum_config.py), our flavors."""
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


@pytest.fixture(scope="module")
def cinder_admin(local_cloud):
    """openstacksdk's block storage as the cloud's admin (who sees an attachment's
    host)."""
    return LocalCloud(local_cloud.clouds_yaml, "local-admin").block_storage


def attached_to(admin, local_cloud, cinder_admin, namespace, claim):
    """(status, [attachment hosts]) of the claim's Cinder volume."""
    pvc = local_cloud.run(admin.read_namespaced_persistent_volume_claim(claim, namespace))
    pv = local_cloud.run(admin.read_persistent_volume(pvc.spec.volume_name))
    volume = cinder_admin.get_volume(
        pv.metadata.annotations["magnum.openstack.org/cinder-volume-id"])
    return volume.status, [a["host_name"] for a in volume.attachments]


def settled(*args):
    """attached_to() once the volume is in none of Cinder's passing states (the
    attachment is completed right after the kubelet found the mount)."""
    passing = ("reserved", "attaching", "detaching")
    return wait_for(lambda: (lambda s: None if s[0] in passing else s)(attached_to(*args)),
                    10, 0.5, "the volume to settle")


def set_unschedulable(admin, local_cloud, node, value):
    local_cloud.run(admin.patch_node(node, {"spec": {"unschedulable": value}}))


def test_home_survives_stop_and_start_and_stop_deletes_the_pod(
    magnum_hub, admin, local_cloud, cinder_admin
):
    """The home claim's Cinder volume is attached to the node the pod runs on;
    the next start lands on the other node (the first cordoned): the volume is
    attached there and the file is in it; at stop it is detached."""
    ns = magnum_hub.hub_id
    home = (admin, local_cloud, cinder_admin, ns, "home-grace")
    magnum_hub.start_server("grace")
    out = magnum_hub.run_cell(
        "grace", "open('/home/jovyan/notes.txt', 'w').write('kept'); print('ok')")
    assert out["stdout"].strip() == "ok", out
    first = pod(admin, local_cloud, ns, "jupyter-grace").spec.node_name
    assert settled(*home) == ("in-use", [first])
    magnum_hub.stop_server("grace")
    assert pod(admin, local_cloud, ns, "jupyter-grace") is None
    claims = local_cloud.run(admin.list_namespaced_persistent_volume_claim(ns)).items
    assert "home-grace" in {c.metadata.name for c in claims}
    wait_for(lambda: attached_to(*home) == ("available", []), 30, 1,
             "the home volume to be detached from %s" % first)
    set_unschedulable(admin, local_cloud, first, True)
    try:
        magnum_hub.start_server("grace")
        second = pod(admin, local_cloud, ns, "jupyter-grace").spec.node_name
        assert second != first
        assert settled(*home) == ("in-use", [second])
        out = magnum_hub.run_cell("grace", "print(open('/home/jovyan/notes.txt').read())")
        assert out["stdout"].strip() == "kept", out
        magnum_hub.stop_server("grace")
    finally:
        set_unschedulable(admin, local_cloud, first, False)
    wait_for(lambda: attached_to(*home) == ("available", []), 30, 1,
             "the home volume to be detached from %s" % second)


# -- a student in a browser, on `make demo BACKEND=magnum`'s configuration ------------

def test_browser_a_student_on_the_demos_magnum_hub(local_cloud, cluster, admin, tmp_path,
                                                   browser_page):
    """tests/e2e/test_browser_e2e.py's visit, on this module's cluster with the
    demo's settings (etc/local_magnum_config.py, the default flavors): the progress
    page speaks of the pod's own steps (its Kubernetes events) in words."""
    from .conftest import HubProcess
    from .test_browser_e2e import PASSWORD, USER, visit

    hub = HubProcess(tmp_path / "browser-hub", local_cloud, "\n".join([
        "import os",
        f"os.environ['LOCAL_MAGNUM_CLUSTER'] = {cluster.name!r}",
        f"load_subconfig({str(REPO / 'etc' / 'local_magnum_config.py')!r})",
        f"c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}",
    ]))
    def pod_gone():
        # in a thread of its own: Playwright's sync API holds this one's event loop
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(pod, admin, local_cloud, hub.hub_id,
                               f"jupyter-{USER}").result() is None

    hub.start()
    try:
        seen = visit(hub, browser_page, pod_gone, "the pod to be deleted")
    finally:
        hub.shutdown()
    # the scheduler's and the kubelet's events, as magnum_spawner.magnum.progress
    # words them
    assert any("A machine was found for your server" in m for m in seen), seen
    assert any("Your server is running" in m for m in seen), seen


# -- a hub outside the cluster: NodePort services on the nodes' addresses ---------

#: [local_cluster] pod_network of the local cloud's real nodes
POD_NETWORK = "10.244.0.0/16"


@pytest.fixture
def pods_unreachable():
    """The local cloud's side (the hub, its proxy, this test) cannot open a
    connection to a pod IP, as a hub outside a real Magnum cluster: only the
    nodes' addresses answer.  (Pods still reach the hub: replies pass.)"""
    rule = ["OUTPUT", "-d", POD_NETWORK, "-m", "conntrack", "--ctstate", "NEW",
            "-j", "REJECT"]
    subprocess.run(["iptables", "-w", "-I", *rule], check=True)
    yield
    subprocess.run(["iptables", "-w", "-D", *rule], check=True)


@pytest.fixture
def node_port_hub(local_cloud, cluster, tmp_path):
    from .conftest import HubProcess

    h = HubProcess(tmp_path / "node-port-hub", local_cloud, hub_config(cluster.name) +
                   '\nc.MagnumSpawner.server_access = "node_port"\n')
    h.start()
    yield h
    h.shutdown()


def test_node_port_a_hub_that_reaches_only_the_nodes_runs_a_cell(
    pods_unreachable, node_port_hub, cluster, magnum, admin, local_cloud
):
    from kubernetes_asyncio.client.rest import ApiException

    hub = node_port_hub
    server = hub.start_server("nadia")
    p = pod(admin, local_cloud, hub.hub_id, "jupyter-nadia")
    assert ipaddress.ip_address(p.status.pod_ip) in ipaddress.ip_network(POD_NETWORK)
    with socket.socket() as s:
        s.settimeout(3)
        assert s.connect_ex((p.status.pod_ip, 8888)) != 0  # the pod itself: refused
    service = local_cloud.run(admin.read_namespaced_service("jupyter-nadia", hub.hub_id))
    assert service.spec.type == "NodePort"
    nodes = magnum.cim.get_cluster(cluster.id).node_addresses
    assert len(nodes) == 2
    # the hub reaches the server on the first node Magnum reports, at the node port
    assert server["state"]["node_url"] == f"http://{nodes[0]}:{service.spec.ports[0].node_port}"
    out = hub.run_cell("nadia", "print(6 * 7)")
    assert out["stdout"].strip() == "42", out
    hub.stop_server("nadia")
    assert pod(admin, local_cloud, hub.hub_id, "jupyter-nadia") is None

    def service_gone():
        try:
            local_cloud.run(admin.read_namespaced_service("jupyter-nadia", hub.hub_id))
        except ApiException as e:
            return e.status == 404
        return False
    # owned by the pod: Kubernetes' garbage collector removes it with the pod
    wait_for(service_gone, 60, 1, "the server's Service to go with its pod")


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
    cfg.MagnumSpawner.image = MAGNUM_IMAGE
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


SLEEP = ["python3", "-c", "import time; time.sleep(600)"]


def kubelet_pid(cluster, node_name):
    """The pid of the kubelet of node ``<cluster>-node-N`` (the driver's pid file)."""
    index = int(node_name.rsplit("-", 1)[1])
    path = CLOUD_DIR / "state" / "magnum" / cluster.id / "pids" / f"kubelet-{index}"
    return int(path.read_text().split()[0])


def test_servers_spread_over_the_nodes_and_a_node_that_stops(cluster, admin, local_cloud):
    """Runs last: one node's kubelet is stopped (SIGSTOP: the driver restarts a
    kubelet that exits) and continued at the end."""
    spawners = [make_spawner(local_cloud, cluster.name, f"spread{i}", cmd=SLEEP)
                for i in range(2)]
    for s in spawners:
        start(local_cloud, s)

    def node_of(s):
        return pod(admin, local_cloud, s.namespace, s.pod_name).spec.node_name

    nodes = [n.metadata.name for n in local_cloud.run(admin.list_node()).items]
    assert sorted(node_of(s) for s in spawners) == sorted(nodes)  # one on each node
    down = node_of(spawners[0])
    pid = kubelet_pid(cluster, down)
    os.kill(pid, signal.SIGSTOP)
    try:
        def node_ready(name):
            node = local_cloud.run(admin.read_node(name))
            return [c.status for c in node.status.conditions if c.type == "Ready"] == ["True"]

        # the node controller's grace period (40 s) for a kubelet that stopped reporting
        wait_for(lambda: not node_ready(down), 120, 2, f"node {down} to be NotReady")

        def pod_ready(s):
            conditions = pod(admin, local_cloud, s.namespace, s.pod_name).status.conditions
            return [c.status for c in conditions if c.type == "Ready"] == ["True"]

        wait_for(lambda: not pod_ready(spawners[0]), 30, 1, "the pod on it to be not Ready")
        # As KubeSpawner documents poll(): the pod is there and its container
        # has not terminated, so the server counts as running (the pod
        # would be evicted after its toleration, 300 s by default) ...
        assert local_cloud.run(spawners[0].poll()) is None
        assert local_cloud.run(spawners[1].poll()) is None
        # ... and a new server starts on the node that is up.
        late = make_spawner(local_cloud, cluster.name, "spread2", cmd=SLEEP)
        start(local_cloud, late)
        assert node_of(late) != down and node_ready(node_of(late))
        spawners.append(late)
    finally:
        os.kill(pid, signal.SIGCONT)
    for s in spawners:
        local_cloud.run(s.stop(now=True))
