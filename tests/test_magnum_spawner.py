"""MagnumSpawner: the shared flavors/images/home onto KubeSpawner's pod and PVC."""

import asyncio
import re

import pytest
from jupyterhub import orm
from jupyterhub.objects import Hub
from jupyterhub.spawner import SpawnException
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.rest import ApiException
from traitlets.config import Config

from magnum_spawner.magnum import MagnumSpawner
from magnum_spawner.magnum import names as kube_names
from magnum_spawner.magnum import spawner as magnum_spawner

from .conftest import PASSWORD_AUTH
from .fake_magnum import FakeMagnum
from .helpers import FakeUser

FLAVORS = {
    "small": {"cpu": 0.5, "memory": 1024},
    "standard": {"cpu": 1, "memory": 2048},
    "big": {"cpu": 2, "memory": 4096, "disk": 20, "cpu_policy": "dedicated"},
}
K8S_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


@pytest.fixture(autouse=True)
def fresh_link():
    magnum_spawner.reset_link()
    yield
    magnum_spawner.reset_link()


class KubeUser(FakeUser):
    id = 7


def make(username="alice", servername="", **config):
    cfg = Config()
    cfg.MagnumSpawner.auth = dict(PASSWORD_AUTH)
    cfg.MagnumSpawner.magnum_cluster = "k8s"
    cfg.MagnumSpawner.flavors = FLAVORS
    for key, value in config.items():
        setattr(cfg.MagnumSpawner, key, value)
    return MagnumSpawner(
        user=KubeUser(username),
        hub=Hub(),
        orm_spawner=orm.Spawner(name=servername, server=orm.Server(
            proto="http", ip="", port=0, cookie_name="c", base_url=f"/user/{username}/",
        )),
        config=cfg,
        api_token="hub-api-token-secret",
        oauth_client_id=f"jupyterhub-user-{username}",
    )


async def pod_of(spawner, options=None):
    spawner.user_options = options or {}
    await spawner.load_user_options()
    return await spawner.get_pod_manifest()


def resources(pod):
    res = pod.spec.containers[0].resources
    return res.limits, res.requests


async def test_flavor_sets_limits_and_requests():
    pod = await pod_of(make(), {"flavor": "small"})
    limits, requests = resources(pod)
    assert limits == {"cpu": 0.5, "memory": 1024 * 2**20}
    assert requests == limits
    assert pod.metadata.labels["hub.jupyter.org/flavor"] == "small"


async def test_default_flavor_and_disk_as_ephemeral_storage():
    spawner = make()
    limits, requests = resources(await pod_of(spawner))
    assert limits == requests == {"cpu": 1.0, "memory": 2048 * 2**20}
    limits, requests = resources(await pod_of(spawner, {"flavor": "big"}))
    assert limits == requests == {
        "cpu": 2.0, "memory": 4096 * 2**20, "ephemeral-storage": "20Gi"}
    # the next choice does not keep the last one's disk or label
    pod = await pod_of(spawner, {"flavor": "small"})
    assert "ephemeral-storage" not in resources(pod)[0]
    assert pod.metadata.labels["hub.jupyter.org/flavor"] == "small"


async def test_image_choice_is_the_pod_image():
    spawner = make(images={"quay.io/jupyter/scipy-notebook": "SciPy",
                           "quay.io/jupyter/base-notebook": "Base"})
    pod = await pod_of(spawner, {"image": "quay.io/jupyter/scipy-notebook"})
    assert pod.spec.containers[0].image == "quay.io/jupyter/scipy-notebook"
    assert spawner.user_options["image"] == "quay.io/jupyter/scipy-notebook"


@pytest.mark.parametrize("options, status", [
    ({"flavor": "huge"}, 400),
    ({"flavor": ["small"]}, 400),
    ({"color": "red"}, 400),
])
async def test_bad_options_are_400_before_any_cluster_call(options, status, cloud):
    spawner = make()
    spawner.user_options = options
    with pytest.raises(SpawnException) as e:
        await spawner.load_user_options()
    assert e.value.status_code == status
    assert cloud.m.request_history == []


async def test_allowed_flavors_limit_the_choice():
    spawner = make(allowed_flavors=["small"])
    with pytest.raises(SpawnException, match="not available to you"):
        await pod_of(spawner, {"flavor": "big"})


async def test_options_form_lists_the_flavors():
    spawner = make()
    form = await spawner.options_form(spawner)
    assert 'value="big"' in form and 'value="small"' in form


async def test_home_claim_on_default_storage_class_mounted_at_home():
    spawner = make(home_volume_size=5)
    pod = await pod_of(spawner)
    pvc = spawner.get_pvc_manifest()
    assert spawner.storage_pvc_ensure
    assert pvc.metadata.name == spawner.pvc_name == "home-alice"
    assert pvc.spec.resources.requests == {"storage": "5Gi"}
    # no class named: the cluster's default (Cinder CSI on Magnum clusters)
    assert pvc.spec.storage_class_name is None
    # as sent to the API server
    sent = ApiClient().sanitize_for_serialization(pod)
    volume = {v["name"]: v for v in sent["spec"]["volumes"]}["home"]
    assert volume["persistentVolumeClaim"] == {"claimName": "home-alice"}
    mount = {m["name"]: m for m in sent["spec"]["containers"][0]["volumeMounts"]}["home"]
    assert mount["mountPath"] == "/home/jovyan"


async def test_home_storage_class_and_no_home():
    spawner = make(home_volume_size=2, home_storage_class="csi-cinder-ssd")
    await pod_of(spawner)
    assert spawner.get_pvc_manifest().spec.storage_class_name == "csi-cinder-ssd"
    spawner = make(home_volume_size=0)
    pod = await pod_of(spawner)
    assert not spawner.storage_pvc_ensure
    assert "home" not in {v.name for v in pod.spec.volumes or []}


class FakeCoreV1:
    def __init__(self):
        self.deleted = []

    async def read_namespaced_persistent_volume_claim(self, name, namespace):
        raise ApiException(status=404, reason="Not Found")

    async def delete_namespaced_persistent_volume_claim(self, name, namespace):
        self.deleted.append((namespace, name))


@pytest.mark.parametrize("flag", [False, True])
async def test_delete_forever_deletes_home_only_when_asked(flag, monkeypatch):
    spawner = make(delete_home_volume_on_delete=flag)
    fake = spawner.api = FakeCoreV1()

    async def ready(force=None, recheck=True):
        return None

    monkeypatch.setattr(spawner, "ensure_cluster", ready)
    await spawner.delete_forever()
    assert fake.deleted == ([("jupyterhub", "home-alice")] if flag else [])


async def test_named_server_keeps_the_users_shared_home(monkeypatch):
    spawner = make(servername="gpu", delete_home_volume_on_delete=True)
    fake = spawner.api = FakeCoreV1()

    async def ready(force=None, recheck=True):
        return None

    monkeypatch.setattr(spawner, "ensure_cluster", ready)
    await spawner.delete_forever()
    assert fake.deleted == []


@pytest.mark.parametrize("pairs", [
    [("alice", ""), ("alice", "gpu"), ("alice--gpu", ""), ("Alice", "")],
    [("ελένη", ""), ("ελένα", ""), ("a.b", ""), ("a_b", ""), ("a-b", "")],
    [("x" * 80, ""), ("x" * 80 + "y", ""), ("user@example.org", "s1")],
])
def test_pod_and_claim_names_valid_and_distinct(pairs):
    pods, claims = set(), set()
    for user, server in pairs:
        spawner = make(user, server, pvc_name_template="home-{user_server}")
        assert K8S_NAME.fullmatch(spawner.pod_name), spawner.pod_name
        assert K8S_NAME.fullmatch(spawner.pvc_name), spawner.pvc_name
        pods.add(spawner.pod_name)
        claims.add(spawner.pvc_name)
    assert len(pods) == len(claims) == len(pairs)


def test_plain_names_stay_readable():
    assert kube_names.fields("alice", "gpu")["user_server"] == "alice--gpu"
    assert make("bob").pod_name == "jupyter-bob"


async def test_not_ready_cluster_is_the_spawn_page_message(cloud):
    magnum = FakeMagnum(cloud)
    magnum.cluster["status"] = "UPDATE_FAILED"
    magnum.cluster["status_reason"] = "Timed out waiting for nodes"
    spawner = make()
    with pytest.raises(SpawnException) as e:
        await spawner.start()
    message = e.value.message
    assert "the course's cluster is not ready" in message.lower()
    assert "UPDATE_FAILED" in message and "Timed out waiting for nodes" in message
    assert e.value.status_code == 503


async def test_poll_during_magnum_outage_assumes_running(cloud):
    magnum = FakeMagnum(cloud)
    magnum.cluster = (503, {"errors": [{"title": "Service Unavailable",
                                        "detail": "", "status": 503}]})
    spawner = make()
    assert await spawner.poll() is None


def test_entry_point():
    from importlib.metadata import entry_points
    found = {e.name: e for e in entry_points(group="jupyterhub.spawners")}
    assert found["magnum"].load() is MagnumSpawner


def test_node_port_service_and_url():
    from kubernetes_asyncio.client import V1ServicePort
    from kubespawner.objects import make_owner_reference

    from magnum_spawner.magnum import access

    spawner = make(server_access="node_port")
    service = spawner.get_service_manifest(make_owner_reference("p", "uid-1"), 8888)
    assert service.spec.type == "NodePort"
    assert service.metadata.name == spawner.pod_name
    # what the API server answers: the same spec with a node port allocated
    service.spec.ports = [V1ServicePort(name="http", port=8888, target_port=8888,
                                        node_port=31234)]
    assert access.node_port_url(service, ("172.24.4.13", "172.24.4.14")) == (
        "http://172.24.4.13:31234")
    assert access.node_port_url(service, ("fd00::13",)) == "http://[fd00::13]:31234"
    with pytest.raises(ValueError, match="no node addresses"):
        access.node_port_url(service, ())
    # the hub keeps the node's URL, not KubeSpawner's in-cluster DNS name
    spawner._node_url = "http://172.24.4.13:31234"
    assert spawner._get_pod_url({"status": {"podIP": "10.0.0.9"}}) == spawner._node_url
    assert spawner.get_state()["node_url"] == spawner._node_url


async def test_server_access_turns_services_on():
    spawner = make(server_access="node_port")
    await pod_of(spawner)
    assert spawner.services_enabled
    spawner = make()
    await pod_of(spawner)
    assert not spawner.services_enabled


def test_each_hub_its_own_namespace_and_kubernetes_user():
    spawner = make(hub_id="physics-101")
    assert spawner.namespace == "physics-101"
    assert spawner.kube_user == "magnum-spawner:physics-101"
    assert make(hub_id="Physics_101").namespace != make(hub_id="physics-101").namespace


async def test_the_server_command_and_args_are_jupyterhub_singleuser():
    spawner = make(args=["--ServerApp.allow_root=True"])
    pod = await pod_of(spawner)
    assert pod.spec.containers[0].args == [
        "jupyterhub-singleuser", "--ServerApp.allow_root=True"]


def test_what_counts_as_the_cluster_refusing_our_tls():
    import ssl

    from kubernetes_asyncio.client.rest import ApiException

    from magnum_spawner.magnum.spawner import _tls_failure

    assert _tls_failure(ssl.SSLCertVerificationError("certificate verify failed"))
    assert _tls_failure(ApiException(status=401, reason="Unauthorized"))
    assert not _tls_failure(ApiException(status=403, reason="Forbidden"))
    assert not _tls_failure(TimeoutError("pod did not start"))
    try:
        try:
            raise ssl.SSLError("tlsv1 alert unknown ca")
        except ssl.SSLError as inner:
            raise RuntimeError("Could not create pod") from inner
    except RuntimeError as outer:
        assert _tls_failure(outer)


async def test_a_tls_refusal_signs_again_and_starts_once_more(monkeypatch):
    import ssl

    from kubespawner import KubeSpawner

    spawner = make(home_volume_size=0)  # (claims: test_magnum_claims.py)
    asked, starts = [], []

    async def ensure(force=None, recheck=True):
        asked.append(force)

    async def kube_start(self):
        starts.append(1)
        if len(starts) == 1:
            raise ssl.SSLCertVerificationError("certificate verify failed: unknown ca")
        return "http://10.0.0.9:8888"

    monkeypatch.setattr(spawner, "ensure_cluster", ensure)
    monkeypatch.setattr(KubeSpawner, "start", kube_start)
    assert await spawner.start() == "http://10.0.0.9:8888"
    assert asked == [None, "the cluster's API refused the hub's TLS"]
    assert len(starts) == 2


async def test_other_start_failures_are_not_retried(monkeypatch):
    from kubespawner import KubeSpawner

    spawner = make(home_volume_size=0)

    async def ensure(force=None, recheck=True):
        assert force is None

    async def kube_start(self):
        raise TimeoutError("pod did not start in 120 seconds!")

    monkeypatch.setattr(spawner, "ensure_cluster", ensure)
    monkeypatch.setattr(KubeSpawner, "start", kube_start)
    with pytest.raises(TimeoutError):
        await spawner.start()


async def test_a_new_kubeconfig_goes_to_every_shared_client(tmp_path):
    """After a signing (a renewal, a rotated CA, a moved API) the clients made
    before connect anew with the new files and address."""
    from kubernetes_asyncio.client import ApiClient, Configuration, CoreV1Api
    from kubespawner import clients

    from magnum_spawner.magnum import credentials, kubeclient

    from .fake_magnum import FakeCA

    ca, key = FakeCA(), credentials.new_key()
    files = credentials.KubeconfigDir(parent=str(tmp_path))
    path = files.write(server="https://new:6443", ca_pem=ca.pem,
                       cert_pem=ca.sign(credentials.make_csr(key, "hub")),
                       key_text=credentials.key_pem(key), cluster_name="k8s")
    config = Configuration()
    config.host = "https://old:6443"
    api = CoreV1Api(ApiClient(config))
    clients._client_cache[("test",)] = api
    old = api.api_client.rest_client
    try:
        await kubeclient.use(path)
        assert api.api_client.rest_client is not old
        new = api.api_client.configuration
        assert new.host == "https://new:6443"
        assert (new.cert_file, new.key_file) == (files.cert_file, files.key_file)
        assert Configuration.get_default_copy().host == "https://new:6443"
        assert kubeclient.in_use()
    finally:
        clients._client_cache.pop(("test",))
        await api.api_client.close()
        files.remove()


async def test_a_pod_start_waits_its_turn_and_for_its_server_to_answer(monkeypatch):
    """The Magnum path shares the Zun path's start queue and answer wait."""
    from kubespawner import KubeSpawner

    from magnum_spawner.common import answering
    from magnum_spawner.common.admission import StartQueue

    StartQueue._queues.pop("magnum-rush", None)
    queue = StartQueue.for_hub("magnum-rush")
    answered = asyncio.Event()
    asked = []

    async def probe(url, timeout):
        asked.append(url)
        return answered.is_set()

    async def ensure(force=None, recheck=True):
        pass

    async def kube_start(self):
        return "http://10.0.0.9:8888"

    async def poll(self):
        return None

    monkeypatch.setattr(answering, "probe", probe)
    monkeypatch.setattr(KubeSpawner, "start", kube_start)
    monkeypatch.setattr(KubeSpawner, "poll", poll)
    spawner = make(hub_id="magnum-rush", concurrent_starts=1, home_volume_size=0)
    monkeypatch.setattr(spawner, "ensure_cluster", ensure)
    await queue.enter(1)  # another student's start holds the only place
    start = asyncio.ensure_future(spawner.start())
    await asyncio.sleep(0.2)
    assert queue.waiting == 1 and not asked
    queue.leave()
    await asyncio.sleep(1.0)
    assert not start.done() and asked[0] == "http://10.0.0.9:8888/user/alice/api"
    answered.set()
    assert await asyncio.wait_for(start, 5) == "http://10.0.0.9:8888"
    assert queue.starting == 0


@pytest.mark.slow
async def test_a_pod_start_out_of_time_names_its_phase_before_jupyterhub_gives_up(monkeypatch):
    """JupyterHub 5.2+ waits start_timeout for start() (asyncio.wait_for in
    User.spawn), then cancels it: a pod that never starts must end with the
    spawner's sentence, not JupyterHub's bare TimeoutError; KubeSpawner's start
    ends with it (JupyterHub's stop then finds no pod on its way)."""
    from kubespawner import KubeSpawner

    pending = []

    async def ensure(force=None, recheck=True):
        pass

    async def kube_start(self):
        pending.append(asyncio.current_task())
        await asyncio.sleep(3600)  # Pending: no node has room yet

    monkeypatch.setattr(KubeSpawner, "start", kube_start)
    spawner = make(home_volume_size=0, start_timeout=4, concurrent_starts=0)
    monkeypatch.setattr(spawner, "ensure_cluster", ensure)
    with pytest.raises(SpawnException) as failed:  # JupyterHub's own wait
        await asyncio.wait_for(asyncio.ensure_future(spawner.start()), spawner.start_timeout)
    assert failed.value.message == (
        "The server did not start within 4 s (the hub was still starting the server's "
        "pod); try again in a few minutes.")
    assert pending[0].cancelled()
