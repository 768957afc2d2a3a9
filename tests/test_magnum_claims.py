"""MagnumSpawner's home claims: a renamed user's claim never goes to a new user
of the old name (issue 17, item 1, the Magnum path).

KubeSpawner's own start is replaced by a stand-in that does what it does with
claims (create unless the name is known to exist, a 409 counting as done), so
the old code's behaviour is what these tests hold against.
"""

import datetime

import pytest
from jupyterhub.spawner import SpawnException
from kubernetes_asyncio.client import ApiClient, V1ObjectMeta, V1PersistentVolumeClaim
from kubernetes_asyncio.client.rest import ApiException

from .helpers import FakeUser
from .test_magnum_spawner import make

ID_KEY = "hub.jupyter.org/user-id"
JAN = datetime.datetime(2026, 1, 5, 9, 0)


class FakeClaims:
    """The claim calls of CoreV1Api, on a dict of claims in one namespace."""

    def __init__(self):
        self.claims = {}
        self.created = []
        self.deleted = []

    def add(self, name, labels=None, annotations=None, created=JAN):
        self.claims[name] = V1PersistentVolumeClaim(metadata=V1ObjectMeta(
            name=name, labels=dict(labels or {}), annotations=dict(annotations or {}),
            creation_timestamp=created.replace(tzinfo=datetime.timezone.utc)))

    async def read_namespaced_persistent_volume_claim(self, name, namespace):
        if name not in self.claims:
            raise ApiException(status=404, reason="Not Found")
        return self.claims[name]

    async def list_namespaced_persistent_volume_claim(self, namespace, label_selector):
        key, _, value = label_selector.partition("=")
        items = [c for c in self.claims.values() if (c.metadata.labels or {}).get(key) == value]
        return type("List", (), {"items": items})()

    async def create_namespaced_persistent_volume_claim(self, namespace, body):
        body = ApiClient().sanitize_for_serialization(body)
        name = body["metadata"]["name"]
        if name in self.claims:
            raise ApiException(status=409, reason="AlreadyExists")
        self.add(name, body["metadata"].get("labels"), body["metadata"].get("annotations"),
                 created=datetime.datetime.utcnow())
        self.created.append(name)

    async def patch_namespaced_persistent_volume_claim(self, name, namespace, body):
        meta = self.claims[name].metadata
        meta.labels = {**(meta.labels or {}), **body["metadata"]["labels"]}
        meta.annotations = {**(meta.annotations or {}), **body["metadata"]["annotations"]}

    async def delete_namespaced_persistent_volume_claim(self, name, namespace):
        self.deleted.append(name)
        self.claims.pop(name, None)


@pytest.fixture
def kube(monkeypatch):
    from kubespawner import KubeSpawner

    fake = FakeClaims()

    async def kube_start(self):
        # what KubeSpawner's _start does with the claim
        await self.load_user_options()
        if self.storage_pvc_ensure and not self._pvc_exists:
            try:
                await self.api.create_namespaced_persistent_volume_claim(
                    namespace=self.namespace, body=self.get_pvc_manifest())
            except ApiException as e:
                if e.status != 409:
                    raise
            self._pvc_exists = True
        return "http://10.0.0.9:8888"

    async def ready(self, force=None, recheck=True):
        return None

    monkeypatch.setattr(KubeSpawner, "start", kube_start)
    monkeypatch.setattr(type(make()), "ensure_cluster", ready)
    return fake


def spawner_of(kube, user, state=None, **config):
    s = make(user.name, **config)
    s.user = user
    s.api = kube
    s.pvc_name = s._expand_user_properties(s.pvc_name_template)
    if state:
        s.load_state(state)
    return s


async def claim_of(kube, user, state=None, **config):
    s = spawner_of(kube, user, state, **config)
    await s.start()
    return s.pvc_name, s.get_state()


async def test_a_new_user_with_a_renamed_users_old_name_gets_a_claim_of_their_own(kube):
    alice = FakeUser("alice", id=11, created=JAN)
    first, state = await claim_of(kube, alice)
    assert first == "home-alice"
    assert kube.claims[first].metadata.labels[ID_KEY] == "11"
    # renamed to bob: the same id and saved state
    again, _ = await claim_of(kube, FakeUser("bob", id=11, created=JAN), state)
    assert again == first
    # a new alice, whose template name is bob's claim
    new_alice = FakeUser("alice", id=12, created=JAN + datetime.timedelta(days=30))
    theirs, state = await claim_of(kube, new_alice)
    assert theirs != first, "the new alice was given bob's claim"
    assert theirs == "home-alice---u12"
    assert kube.claims[theirs].metadata.labels[ID_KEY] == "12"
    # and keeps it, by her state or without
    assert (await claim_of(kube, new_alice, state))[0] == theirs
    assert (await claim_of(kube, new_alice))[0] == theirs


async def test_a_renamed_user_without_state_is_followed_by_id(kube):
    first, _ = await claim_of(kube, FakeUser("alice", id=11, created=JAN))
    found, _ = await claim_of(kube, FakeUser("bob", id=11, created=JAN))
    assert found == first
    assert kube.created == [first]


async def test_an_old_claim_made_before_the_account_stops_the_start(kube):
    kube.add("home-alice", created=datetime.datetime(2026, 2, 1))
    new_alice = FakeUser("alice", id=12, created=datetime.datetime(2026, 3, 1))
    with pytest.raises(SpawnException) as info:
        await claim_of(kube, new_alice)
    assert info.value.reason == "home-volume-owner"
    assert "cannot tell whether it is yours" in info.value.message
    assert f"{ID_KEY}=12" in info.value.log_message
    assert kube.created == []


async def test_an_old_claim_in_the_users_state_is_adopted(kube):
    kube.add("home-alice", created=datetime.datetime(2026, 2, 1))
    alice = FakeUser("alice", id=11, created=JAN)
    name, _ = await claim_of(kube, alice, {"pvc_name": "home-alice"})
    assert name == "home-alice"
    assert kube.claims[name].metadata.labels[ID_KEY] == "11"


async def test_delete_forever_never_deletes_a_renamed_users_claim(kube):
    kube.add("home-alice", labels={ID_KEY: "11"})
    new_alice = spawner_of(kube, FakeUser("alice", id=12, created=JAN),
                           delete_home_volume_on_delete=True)
    await new_alice.delete_forever()
    assert kube.deleted == []
    bob = spawner_of(kube, FakeUser("bob", id=11, created=JAN), {"pvc_name": "home-alice"},
                     delete_home_volume_on_delete=True)
    await bob.delete_forever()
    assert kube.deleted == ["home-alice"]
