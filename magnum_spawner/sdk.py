"""OpenStack services reached through openstacksdk (Cinder, Neutron).

Each client holds an openstacksdk Connection on the hub's shared keystoneauth
session.  openstacksdk is synchronous: every call runs on a bounded thread pool,
so the hub's event loop never waits on the cloud.  Clients are shared by every
spawner of the hub, one per session.
"""

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from keystoneauth1 import exceptions as ks_exc
from openstack import connection as sdk_connection
from openstack import exceptions as sdk_exc

from .errors import sdk_error

log = logging.getLogger(__name__)


class SdkService:
    """Asynchronous calls to one service; errors become magnum_spawner errors."""

    #: the service's name in errors and thread names (``cinder``, ``neutron``)
    service = None

    def __init__(self, cloud, max_workers=4):
        # Keep the CloudSession referenced: the shared clients' key is its session.
        self.cloud = cloud
        self.conn = sdk_connection.Connection(
            session=cloud.session,
            region_name=cloud.region_name,
            interface=cloud.interface,
        )
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix=f"{self.service}-api"
        )

    def _run(self, func, *args, **kwargs):
        try:
            try:
                return func(*args, **kwargs)
            except sdk_exc.HttpException as e:
                if e.status_code != 401:
                    raise
                # A token refused in a race with another thread's
                # re-authentication (see ZunClient): once more, new token.
                log.info("%s refused the token; retrying with a new one", self.service)
                return func(*args, **kwargs)
        except (sdk_exc.SDKException, ks_exc.ClientException) as e:
            raise sdk_error(e, self.service) from None

    def _submit(self, func, *args, **kwargs):
        """Start a call; the future completes even if its awaiter is cancelled."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, lambda: self._run(func, *args, **kwargs))

    async def _call(self, func, *args, **kwargs):
        return await self._submit(func, *args, **kwargs)

    def close(self):
        self._executor.shutdown(wait=False)


class SharedClients:
    """One client of ``cls`` per keystoneauth session, made on first use."""

    def __init__(self, cls):
        self.cls = cls
        self._clients = {}
        self._lock = threading.Lock()

    def get(self, cloud, max_workers=4):
        key = id(cloud.session)
        with self._lock:
            client = self._clients.get(key)
            if client is None or client.cloud.session is not cloud.session:
                client = self._clients[key] = self.cls(cloud, max_workers)
            return client

    def reset(self):
        """Forget the clients (tests, reconfiguration)."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
