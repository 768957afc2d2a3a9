"""Cinder home volumes (filled in by issue 4)."""

from traitlets.config import Configurable


class HomeVolumeMixin(Configurable):
    """Traits and steps for per-user home volumes.

    ZunSpawner calls ``await self.prepare_home_volume()`` in start(), after old
    containers of this server are gone and before the create; it returns the Zun
    ``mounts`` list.  ``delete_forever`` (defined here) removes the volume when
    configured.
    """

    async def prepare_home_volume(self):
        """Return Zun ``mounts`` for this spawn (none yet)."""
        return []
