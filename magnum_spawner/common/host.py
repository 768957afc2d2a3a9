"""What the shared spawner parts need from the spawner they are mixed into.

:class:`~.flavors.FlavorMixin` and the home volume mixin build on :class:`Host`.
JupyterHub's Spawner gives ``user``, ``name``, ``log``, ``_log_name``,
``user_options``, ``mem_limit`` and ``cpu_limit``; the spawner gives the rest
by overriding what is declared here.
"""

import inspect

from traitlets.config import Configurable


class Host(Configurable):
    def cloud_context(self):
        """The hub's shared :class:`~.cloud.CloudContext` for this spawner's settings."""
        raise NotImplementedError

    def emit(self, progress, message):
        """Report a step of the start (the spawner shows it on the spawn page)."""
        self.log.info(message)

    async def resolve(self, value):
        """A per-user setting's value: callables get the spawner, may be async."""
        if callable(value):
            value = value(self)
            if inspect.isawaitable(value):
                value = await value
        return value
