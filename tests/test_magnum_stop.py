"""MagnumSpawner's stop and delete_forever: nothing of a server's is left unowned."""

import asyncio

import pytest
from jupyterhub.spawner import SpawnException
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner

from magnum_spawner.magnum import rbac, stops

from .fake_magnum import FakeMagnum
from .test_magnum_spawner import fresh_link, make  # noqa: F401 (an autouse fixture)

UNAVAILABLE = (503, {"errors": [{"title": "Service Unavailable", "detail": "",
                                 "status": 503}]})
RUNNING = {"pod_name": "jupyter-alice", "namespace": "jupyterhub", "pod_uid": "uid-1"}


class FakePods:
    """The cluster's pods as delete_namespaced_pod sees them: name -> uid."""

    def __init__(self, **pods):
        self.pods = {("jupyterhub", name.replace("_", "-")): uid for name, uid in pods.items()}
        self.deleted = []

    async def delete_namespaced_pod(self, name, namespace, body=None, **kwargs):
        uid = self.pods.get((namespace, name))
        if uid is None:
            raise ApiException(status=404, reason="Not Found")
        wanted = body.preconditions.uid if body and body.preconditions else None
        if wanted and wanted != uid:
            raise ApiException(status=409, reason="Conflict")  # Precondition failed
        del self.pods[(namespace, name)]
        self.deleted.append((namespace, name, uid))


@pytest.fixture
def no_grant(monkeypatch):
    async def grant(admin_kubeconfig, namespace, user):
        pass

    monkeypatch.setattr(rbac, "grant", grant)


def after_jupyterhubs_stop(spawner):
    """What JupyterHub's User.stop does whatever stop() raised: the state saved."""
    spawner.clear_state()
    return spawner.get_state()


async def eventually(check, timeout=5):
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("did not happen in time")


async def test_a_stop_without_magnum_after_a_restart_keeps_the_pod_then_deletes_it(
        cloud, monkeypatch, no_grant):
    monkeypatch.setattr(stops, "RETRY_DELAYS", (0.05,))
    magnum = FakeMagnum(cloud)
    magnum.cluster, answer = UNAVAILABLE, magnum.cluster
    # the hub restarted: the server's state from the database, no certificate yet
    spawner = make()
    spawner.load_state(RUNNING)
    spawner.api = fake = FakePods(jupyter_alice="uid-1")
    with pytest.raises(SpawnException):
        await spawner.stop()
    state = after_jupyterhubs_stop(spawner)
    assert state["unfinished_stop"] == [
        {"namespace": "jupyterhub", "pod": "jupyter-alice", "uid": "uid-1"}]
    # Magnum answers again: the pod is deleted while the hub runs
    await asyncio.sleep(0.2)
    assert fake.deleted == []
    magnum.cluster = answer
    await eventually(lambda: fake.deleted)
    assert fake.deleted == [("jupyterhub", "jupyter-alice", "uid-1")]


async def test_the_next_start_deletes_an_unfinished_stops_pod_first(
        cloud, monkeypatch, no_grant):
    FakeMagnum(cloud)
    # a hub that was stopped for good after the failed stop: only the state is left
    spawner = make(pod_name_template="server-{username}", wait_for_answer=False,
                   home_volume_size=0)
    spawner.load_state({"unfinished_stop": [
        {"namespace": "jupyterhub", "pod": "jupyter-alice", "uid": "uid-1"}]})
    spawner.api = fake = FakePods(jupyter_alice="uid-1")
    order = []

    async def kube_start(self):
        order.append(("start", list(fake.deleted)))
        return "http://10.0.0.9:8888"

    monkeypatch.setattr(KubeSpawner, "start", kube_start)
    await spawner.start()
    assert order == [("start", [("jupyterhub", "jupyter-alice", "uid-1")])]
    assert "unfinished_stop" not in spawner.get_state()


async def test_an_unfinished_stop_never_deletes_a_newer_pod_of_that_name(
        cloud, monkeypatch, no_grant):
    FakeMagnum(cloud)
    spawner = make()
    spawner.load_state({"unfinished_stop": [
        {"namespace": "jupyterhub", "pod": "jupyter-alice", "uid": "uid-1"}]})
    # the user started again (on another hub process) since: uid-2 runs
    spawner.api = fake = FakePods(jupyter_alice="uid-2")
    await spawner.delete_forever()
    assert fake.deleted == [] and fake.pods == {("jupyterhub", "jupyter-alice"): "uid-2"}
    assert "unfinished_stop" not in spawner.get_state()


async def test_a_stop_that_works_keeps_nothing(cloud, monkeypatch, no_grant):
    FakeMagnum(cloud)
    spawner = make()
    spawner.load_state(RUNNING)

    async def kube_stop(self, now=False):
        pass

    monkeypatch.setattr(KubeSpawner, "stop", kube_stop)
    await spawner.stop()
    assert "unfinished_stop" not in after_jupyterhubs_stop(spawner)


# -- delete_forever: a named server's own claim ------------------------------------

class FakeClaims:
    def __init__(self):
        self.deleted = []

    async def read_namespaced_persistent_volume_claim(self, name, namespace):
        # (whose a claim is: test_magnum_claims.py)
        raise ApiException(status=404, reason="Not Found")

    async def delete_namespaced_persistent_volume_claim(self, name, namespace):
        self.deleted.append(name)


@pytest.mark.parametrize("template, server, deleted", [
    ("home-{username}-{servername}", "gpu", ["home-alice-gpu"]),
    ("home-{user_server}", "gpu", ["home-alice--gpu"]),
    ("home-{username}-{unescaped_servername}", "gpu", ["home-alice-gpu"]),
    ("home-{user_server}", "", ["home-alice"]),
    # the user's shared home: never by a named server
    ("home-{username}", "gpu", []),
    ("home-{userid}", "gpu", []),
])
async def test_delete_forever_deletes_a_named_servers_own_claim(
        monkeypatch, template, server, deleted):
    spawner = make(servername=server, delete_home_volume_on_delete=True,
                   pvc_name_template=template)
    spawner.api = fake = FakeClaims()

    async def ready(force=None, recheck=True):
        return None

    monkeypatch.setattr(spawner, "ensure_cluster", ready)
    await spawner.delete_forever()
    assert fake.deleted == deleted
