"""Flavors, images and the options form (filled in by issue 5)."""

from traitlets.config import Configurable


class FlavorMixin(Configurable):
    """Traits and steps for named sizes and images."""

    async def apply_flavor(self):
        """Validate user_options and apply the chosen flavor and image."""
