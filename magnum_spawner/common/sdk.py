"""OpenStack services reached through openstacksdk (Cinder, Neutron).

Each client holds an openstacksdk Connection on the hub's shared keystoneauth
session.  openstacksdk is synchronous: every call runs on a bounded thread pool,
so the hub's event loop never waits on the cloud.  Clients are shared by every
spawner of the hub: one per cloud context (``CloudContext.shared``).
"""

import asyncio
import contextvars
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc

from .errors import CloudError, Unreachable, from_openstacksdk

log = logging.getLogger(__name__)


class SdkService:
    """Asynchronous calls to one service; errors become magnum_spawner errors."""

    #: the service's name in errors and thread names (``cinder``, ``neutron``)
    service = None

    def __init__(self, cloud, max_workers=4):
        self.conn = cloud.connection()
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
            raise from_openstacksdk(e, self.service) from None

    #: Seconds between the tries of a read (a GET may be sent again): a 5xx or a
    #: connection failure is retried, as keystoneauth does for Zun's GETs.
    read_retry_delays = (0.5, 1.5)

    def _run_read(self, func, *args, **kwargs):
        for delay in (*self.read_retry_delays, None):
            try:
                return self._run(func, *args, **kwargs)
            except CloudError as e:
                transient = isinstance(e, Unreachable) or (
                    e.status is not None and e.status >= 500 and e.status != 501)
                if delay is None or not transient:
                    raise
                log.info("%s read failed (%s); again in %.1f s", self.service, e, delay)
                time.sleep(delay)  # a worker thread, never the event loop

    def _in_thread(self, func, *args, **kwargs):
        """Run ``func`` on the pool; the future completes even if its awaiter is
        cancelled.  Every call goes through here: the caller's context goes
        along (the start's request id, metrics.py), which a thread pool does not
        do by itself."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return loop.run_in_executor(
            self._executor, lambda: context.run(func, *args, **kwargs))

    async def _read(self, func, *args, **kwargs):
        """A call that only reads: transient failures are retried."""
        return await self._in_thread(self._run_read, func, *args, **kwargs)

    def _submit(self, func, *args, **kwargs):
        """Start a call that changes something (sent once)."""
        return self._in_thread(self._run, func, *args, **kwargs)

    async def _call(self, func, *args, **kwargs):
        return await self._submit(func, *args, **kwargs)

    def close(self):
        self._executor.shutdown(wait=False)

    @classmethod
    def shared(cls, cloud, max_workers=4):
        """The hub's one client of this class for a cloud context (made on first use)."""
        return cloud.shared((cls, max_workers), lambda: cls(cloud, max_workers))
