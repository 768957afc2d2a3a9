"""What every spawner of this package has, and what its shared parts build on.

:class:`Host` holds the settings both spawners share (credentials, the hub's
id, the image, the API thread pool), the cloud context they give, the state
fields each part keeps, the steps of a start and the resolution of per-user
settings.
:class:`~.flavors.FlavorMixin` and the Zun path's mixins build on it, so what
they need from their spawner is declared here, once.  JupyterHub's Spawner gives
the rest (``user``, ``name``, ``log``, ``_log_name``, ``user_options``,
``mem_limit``, ``cpu_limit``).
"""

import inspect

from traitlets import Bool, Callable, Dict, Integer, Unicode, Union
from traitlets.config import Configurable

from .cloud import get_cloud
from .logs import adopt_library_logs


class Host(Configurable):
    # -- credentials ----------------------------------------------------------

    cloud = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""
        Name of the cloud in clouds.yaml to use.

        clouds.yaml is found the way the ``openstack`` command finds it:
        ``OS_CLIENT_CONFIG_FILE``, ``./clouds.yaml``, ``~/.config/openstack/`` and
        ``/etc/openstack/``.  Takes precedence over ``OS_*`` environment variables
        and over :attr:`auth`.  Example: ``c.ZunSpawner.cloud = "mycloud"``.
        """,
    )

    auth = Dict(
        config=True,
        help="""
        Explicit Keystone credentials, used when neither :attr:`cloud` nor
        ``OS_CLOUD``/``OS_AUTH_URL`` is set.

        Either a clouds.yaml-style entry (``{"auth_type": ..., "auth": {...}}``)
        or just its ``auth`` mapping; an ``application_credential_id`` selects
        application-credential auth, otherwise password auth.  Example::

            c.ZunSpawner.auth = {
                "auth_url": "https://keystone.example.org/v3",
                "application_credential_id": "...",
                "application_credential_secret": "...",
            }

        Prefer clouds.yaml, which keeps secrets out of the hub's config file.
        """,
    )

    region_name = Unicode(
        None, allow_none=True, config=True,
        help="Region to use (default: the cloud's own ``region_name``).",
    )

    interface = Unicode(
        None, allow_none=True, config=True,
        help="""
        Endpoint interface: ``public``, ``internal`` or ``admin``
        (default: the cloud's own setting, usually ``public``).
        """,
    )

    verify = Union(
        [Bool(), Unicode()],
        default_value=None,
        allow_none=True,
        config=True,
        help="""
        TLS verification: False to turn it off (never in production), or the
        path of a CA bundle.  Default: the cloud's own ``verify``/``cacert``.
        """,
    )

    api_workers = Integer(
        8,
        config=True,
        help="""
        Threads for Zun API calls.  The HTTP client is synchronous, so calls run
        on this bounded pool and the hub's event loop never waits on the network.
        Shared by all spawners of the hub.
        """,
    )

    # -- what runs ------------------------------------------------------------

    image = Union(
        [Unicode(), Callable()],
        default_value="quay.io/jupyter/base-notebook",
        config=True,
        help="""
        Container image for single-user servers.  May be a callable taking the
        spawner and returning the image name (it may be async).
        """,
    )

    hub_id = Unicode(
        "jupyterhub",
        config=True,
        help="""
        Identifies this hub's containers (label ``hub.jupyter.org/hub``).  Set a
        different value on each hub that shares one cloud project: a hub only
        ever touches containers that carry its own id.
        """,
    )

    #: What a class keeps in the spawner's state (the hub's database): groups of
    #: ``{state key: attribute}``, each saved when its first attribute is set and
    #: cleared together.  Every class in the MRO may declare its own.
    state_fields = ()

    def _state_groups(self):
        for cls in type(self).__mro__:
            yield from cls.__dict__.get("state_fields", ())

    def get_state(self):
        state = super().get_state()
        for group in self._state_groups():
            if getattr(self, next(iter(group.values()))):
                state.update({key: getattr(self, attr) for key, attr in group.items()})
        return state

    def load_state(self, state):
        super().load_state(state)
        for group in self._state_groups():
            for key, attr in group.items():
                setattr(self, attr, state.get(key))

    def clear_state(self):
        super().clear_state()
        for group in self._state_groups():
            for attr in group.values():
                setattr(self, attr, None)

    def cloud_context(self):
        """The hub's shared :class:`~.cloud.CloudContext` for these settings."""
        adopt_library_logs(self.log)
        return get_cloud(
            cloud=self.cloud,
            auth=self.auth or None,
            region_name=self.region_name,
            interface=self.interface,
            verify=self.verify if isinstance(self.verify, bool) else None,
            cacert=self.verify if isinstance(self.verify, str) else None,
        )

    async def resolve(self, value):
        """A per-user setting's value: callables get the spawner, may be async."""
        if callable(value):
            value = value(self)
            if inspect.isawaitable(value):
                value = await value
        return value

    def emit(self, progress, message):
        """Report a step of the start (a spawner may show it on the spawn page)."""
        self.log.info("%s: %s", self._log_name, message)
