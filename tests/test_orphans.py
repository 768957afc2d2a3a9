"""The orphan clean-up: deletes what no server owns, and nothing else."""

import re

import pytest
from jupyterhub import orm

from magnum_spawner.zun.poller import HubPoller

from .fake_neutron import FakeNeutron
from .fake_zun import FakeZun
from .helpers import make_spawner

OWNED_IN_DB = "0000000a-0000-4000-8000-000000000000"  # a server's saved state names it
RUNNING_HERE = "0000000b-0000-4000-8000-000000000000"  # the polling server's own
ORPHAN = "0000000c-0000-4000-8000-000000000000"
OTHER_HUB = "0000000d-0000-4000-8000-000000000000"
NOT_MANAGED = "0000000e-0000-4000-8000-000000000000"  # our hub id, someone else's tool
PENDING = "0000000f-0000-4000-8000-000000000000"  # a start whose state is not saved yet


@pytest.fixture
def zun(cloud):
    zun = FakeZun().install(cloud.m)
    zun.add(OWNED_IN_DB, "jupyter-bob")
    zun.add(RUNNING_HERE, "jupyter-alice")
    zun.add(ORPHAN, "jupyter-carol")
    zun.add(OTHER_HUB, "jupyter-dave", hub="another-hub")
    zun.add(NOT_MANAGED, "jupyter-erin")
    zun.containers[NOT_MANAGED]["labels"].pop("hub.jupyter.org/managed-by")
    zun.add(PENDING, "jupyter-frank")
    cloud.m.delete(re.compile(r"/v1/containers/"), status_code=204)
    return zun


@pytest.fixture
def db():
    session = orm.new_session_factory("sqlite://")()
    bob = orm.User(name="bob")
    session.add(bob)
    session.add(orm.Spawner(user=bob, name="", state={"container_id": OWNED_IN_DB,
                                                      "container_name": "jupyter-bob"}))
    session.commit()
    yield session
    session.close()


def hub_spawner(db, username, **config):
    """A spawner whose server row lives in the hub's database session."""
    spawner = make_spawner(username, config={
        "use_hub_poller": True, "hub_poll_interval": 30, **config})
    user = orm.User(name=username)
    db.add(user)
    spawner.orm_spawner.user = user
    db.add(spawner.orm_spawner)
    db.commit()
    return spawner


async def full_lists(cloud, spawner, count, clock_step):
    """``count`` full lists, each ``clock_step`` seconds after the one before."""
    poller = HubPoller.for_hub(spawner.zun, "jupyterhub", 30)
    for _ in range(count):
        await spawner.poll()
        await poller.refresh_full()
        for reconciler in poller.after_full:  # time passes
            reconciler.orphan_since = {
                u: t - clock_step for u, t in reconciler.orphan_since.items()}
    return poller


def deletes(cloud):
    return [r.path.rsplit("/", 1)[1] for r in cloud.requests("DELETE")]


async def test_only_a_container_no_server_owns_is_deleted_after_the_grace(cloud, zun, db):
    alice = hub_spawner(db, "alice", cleanup_orphans=True, orphan_grace_period=600)
    alice.load_state({"container_id": RUNNING_HERE, "container_name": "jupyter-alice"})
    frank = hub_spawner(db, "frank", cleanup_orphans=True, orphan_grace_period=600)
    # a start in flight: its container exists, its state is not saved yet
    frank._spawn_pending = True
    cloud.m.get(f"{zun.base}/v1/containers?name=jupyter-frank", status_code=500)
    with pytest.raises(Exception):
        await frank.start()  # got as far as joining the clean-up; then stuck

    # first sight, and 5 minutes later: still within the grace period
    await full_lists(cloud, alice, 2, clock_step=300)
    assert deletes(cloud) == []
    # 10 minutes an orphan in every full list: deleted
    await full_lists(cloud, alice, 1, clock_step=300)
    assert deletes(cloud) == [ORPHAN]
    (request,) = cloud.requests("DELETE")
    assert request.qs == {"stop": ["true"]}  # never force
    # never a volume: no request reached Cinder at all
    assert not cloud.requests(pattern="8776")


async def test_an_orphan_that_gets_an_owner_again_is_kept(cloud, zun, db):
    alice = hub_spawner(db, "alice", cleanup_orphans=True, orphan_grace_period=600)
    alice.load_state({"container_id": RUNNING_HERE})
    await full_lists(cloud, alice, 2, clock_step=400)
    carol = db.query(orm.User).filter_by(name="bob").one()
    db.add(orm.Spawner(user=carol, name="lab", state={"container_id": ORPHAN}))
    db.commit()
    await full_lists(cloud, alice, 2, clock_step=400)
    assert ORPHAN not in deletes(cloud)
    assert deletes(cloud) == [PENDING]  # frank's: no server here is making it


async def test_off_by_default(cloud, zun, db):
    alice = hub_spawner(db, "alice")
    alice.load_state({"container_id": RUNNING_HERE})
    await full_lists(cloud, alice, 3, clock_step=3600)
    assert deletes(cloud) == []


async def test_without_the_hubs_database_nothing_is_deleted(cloud, zun):
    alice = make_spawner("alice", config={
        "use_hub_poller": True, "cleanup_orphans": True, "orphan_grace_period": 1})
    alice.load_state({"container_id": RUNNING_HERE})
    await full_lists(cloud, alice, 3, clock_step=3600)
    assert deletes(cloud) == []


async def test_a_stopped_container_kept_for_inspection_is_not_an_orphan(cloud, zun, db):
    """``delete_stopped_containers = False`` keeps a crashed container; JupyterHub
    clears the server's state at stop, but the server still exists: not an orphan.
    A container of a server that was deleted is one."""
    kept = "00000010-0000-4000-8000-000000000000"
    gone = "00000011-0000-4000-8000-000000000000"
    zun.add(kept, "jupyter-gina", status="Error")
    zun.add(gone, "jupyter-gina-lab", status="Error")
    zun.containers[gone]["labels"]["hub.jupyter.org/user"] = "gina"
    zun.containers[gone]["labels"]["hub.jupyter.org/server"] = "lab"
    gina = orm.User(name="gina")
    db.add(gina)
    db.add(orm.Spawner(user=gina, name="", state={}))  # stopped: state cleared
    db.commit()
    alice = hub_spawner(db, "alice", cleanup_orphans=True, orphan_grace_period=600,
                        delete_stopped_containers=False)
    alice.load_state({"container_id": RUNNING_HERE, "container_name": "jupyter-alice"})
    await full_lists(cloud, alice, 3, clock_step=400)
    assert kept not in deletes(cloud)
    assert gone in deletes(cloud)


async def test_an_orphans_floating_ip_goes_with_it(cloud, zun, db):
    neutron = FakeNeutron().install(cloud)
    carols = neutron.add("magnum-spawner hub=jupyterhub container=jupyter-carol ip=0123456789ab")
    alices = neutron.add("magnum-spawner hub=jupyterhub container=jupyter-alice ip=0123456789ab")
    admins = neutron.add("for test")
    alice = hub_spawner(db, "alice", cleanup_orphans=True, orphan_grace_period=600,
                        server_access="floating_ip")
    alice.load_state({"container_id": RUNNING_HERE, "container_name": "jupyter-alice",
                      "floating_ip_id": alices})
    await full_lists(cloud, alice, 3, clock_step=400)
    assert ORPHAN in deletes(cloud)
    assert carols not in neutron.ips
    assert sorted(neutron.ips) == sorted([alices, admins])
