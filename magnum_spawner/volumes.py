"""Cinder home volumes (filled in by the home-volume work; see issue 4)."""

from traitlets.config import Configurable


class HomeVolumeMixin(Configurable):
    """Traits and steps for per-user home volumes."""

    async def prepare_home_volume(self):
        """Return Zun ``mounts`` for this spawn (none yet)."""
        return []

    async def delete_home_volume(self):
        """Called from delete_forever."""
