"""Flavors, images and the options form (filled in by issue 5)."""

from traitlets.config import Configurable


class FlavorMixin(Configurable):
    """Traits and steps for named sizes and images.

    ZunSpawner calls, in start():
    - ``await self.apply_flavor()`` first of all: validate ``user_options`` and set
      ``image``, ``mem_limit`` and ``cpu_limit`` from the chosen flavor and image;
    - ``self.flavor_cpu_policy()``, ``self.flavor_disk()`` and
      ``self.extra_labels()`` while building the create body.
    """

    async def apply_flavor(self):
        """Validate user_options and apply the chosen flavor and image."""

    def flavor_cpu_policy(self):
        """Zun ``cpu_policy`` for the chosen flavor (None: Zun's default, shared)."""
        return None

    def flavor_disk(self):
        """Zun ``disk`` (GiB) for the chosen flavor (None: not sent)."""
        return None

    def extra_labels(self):
        """Labels recording the chosen flavor and image."""
        return {}
