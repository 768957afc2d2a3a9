"""One cloud context per settings: one session, one Connection, shared clients, one reset."""

from magnum_spawner.common import cloud as cloud_context
from magnum_spawner.zun.poller import HubPoller

from .conftest import PASSWORD_AUTH
from .helpers import make_spawner


class Closable:
    closed = False

    def close(self):
        self.closed = True


def test_the_same_settings_share_one_context_with_one_connection():
    first = cloud_context.get_cloud(auth=PASSWORD_AUTH)
    assert cloud_context.get_cloud(auth=PASSWORD_AUTH) is first
    assert first.connection() is first.connection()
    other = cloud_context.get_cloud(auth=PASSWORD_AUTH, region_name="RegionTwo")
    assert other is not first and other.connection() is not first.connection()


def test_spawners_share_the_zun_and_cinder_clients_of_their_context():
    alice, bob = make_spawner("alice"), make_spawner("bob")
    assert alice.zun is bob.zun
    assert alice.cinder is bob.cinder
    assert alice.cinder.conn is alice.cloud_context().connection()


async def test_one_reset_closes_the_clients_and_stops_the_pollers(cloud):
    context = cloud_context.get_cloud(auth=PASSWORD_AUTH)
    client = context.shared("test-client", Closable)
    poller = HubPoller.for_hub(make_spawner().zun, "jupyterhub", 60)
    assert HubPoller._instances
    cloud_context.reset()
    assert client.closed
    assert not HubPoller._instances and poller._task is None
    assert cloud_context.get_cloud(auth=PASSWORD_AUTH) is not context
