"""The cloud context: one per cloud settings, shared by every spawner of the hub.

A :class:`CloudContext` holds the keystoneauth session, one openstacksdk
``Connection`` on it (made on first use), and whatever belongs to that cloud and
should be made once per hub: the service clients (Zun, Cinder), the Nova flavors
read so far.  :func:`reset` forgets all of it (tests, reconfiguration).

The configuration is read with openstacksdk's config loader so that clouds.yaml
(``OS_CLIENT_CONFIG_FILE``, ``OS_CLOUD``, the standard search paths), ``OS_*``
environment variables and explicit settings all behave as they do for the
``openstack`` command.  keystoneauth renews the token when it expires, so the hub
logs in once, not once per spawn.
"""

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field

from keystoneauth1 import exceptions as ks_exc
from openstack import connection as sdk_connection
from openstack import exceptions as sdk_exc
from openstack.config import loader

from .. import metrics
from .errors import CloudConfigError

log = logging.getLogger(__name__)

_lock = threading.Lock()
_cache = {}
#: what else reset() forgets: the registries kept per client (pollers, janitors)
_reset_hooks = []


@dataclass(eq=False)
class CloudContext:
    """A keystoneauth session, where to find services with it, and what is shared."""

    session: object
    region_name: str | None
    interface: str | None
    #: a human-readable name for messages: the cloud's name or where auth came from
    source: str
    cloud_region: object = None
    _shared: dict = field(default_factory=dict, repr=False)
    # re-entrant: making a client may need the connection
    _lock: object = field(default_factory=threading.RLock, repr=False)

    def endpoint_args(self):
        """``region_name``/``interface`` for a client, only those that are set."""
        args = {}
        if self.region_name:
            args["region_name"] = self.region_name
        if self.interface:
            args["interface"] = self.interface
        return args

    def shared(self, key, make):
        """The object kept under ``key`` in this context, made by ``make()`` once."""
        with self._lock:
            found = self._shared.get(key)
            if found is None:
                found = self._shared[key] = make()
            return found

    def cached(self, key):
        """The object kept under ``key``, or None."""
        with self._lock:
            return self._shared.get(key)

    def connection(self):
        """The context's openstacksdk ``Connection`` (block storage, compute, ...)."""
        return self.shared("connection", lambda: sdk_connection.Connection(
            session=self.session, **self.endpoint_args()
        ))

    def close(self):
        """Close every shared client that can be closed, and forget them all."""
        with self._lock:
            found = list(self._shared.values())
            self._shared.clear()
        for item in found:
            close = getattr(item, "close", None)
            if close is not None:
                close()


def _auth_entry(auth):
    """Accept either a clouds.yaml-style entry or a bare ``auth`` mapping."""
    entry = dict(auth)
    if "auth" not in entry:
        entry = {"auth": entry}
    if "auth_type" not in entry:
        if "application_credential_id" in entry["auth"] or (
            "application_credential_name" in entry["auth"]
        ):
            entry["auth_type"] = "v3applicationcredential"
        else:
            entry["auth_type"] = "password"
    return entry


def _describe(exc):
    """The cause of a config error, without echoing secrets."""
    if isinstance(exc, ks_exc.MissingRequiredOptions):
        names = ", ".join(o.dest for o in exc.options)
        return f"missing required auth options: {names}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def choose_source(cloud=None, auth=None, environ=None):
    """Which configuration source wins, in the documented order of preference."""
    environ = os.environ if environ is None else environ
    if cloud:
        return "cloud"
    if environ.get("OS_CLOUD") or environ.get("OS_AUTH_URL"):
        return "environment"
    if auth:
        return "auth"
    return None


def load_cloud(cloud=None, auth=None, region_name=None, interface=None, verify=None, cacert=None):
    """Read the configuration and return a new :class:`CloudContext` (uncached).

    Raises :class:`CloudConfigError` with one readable sentence naming the cloud
    and the cause.
    """
    source = choose_source(cloud, auth)
    kwargs = {}
    if region_name:
        kwargs["region_name"] = region_name
    if interface:
        kwargs["interface"] = interface
    if verify is not None:
        kwargs["verify"] = verify
    if cacert:
        kwargs["cacert"] = cacert
    try:
        if source == "cloud":
            label = f"cloud {cloud!r}"
            region = loader.OpenStackConfig().get_one(cloud=cloud, **kwargs)
        elif source == "environment":
            name = os.environ.get("OS_CLOUD")
            label = f"cloud {name!r} (OS_CLOUD)" if name else "the OS_* environment"
            region = loader.OpenStackConfig().get_one(**kwargs)
        elif source == "auth":
            label = "ZunSpawner.auth"
            entry = _auth_entry(auth)
            entry.update(kwargs)
            config = loader.OpenStackConfig(load_yaml_config=False, load_envvars=False)
            region = config.get_one(**entry)
        else:
            raise CloudConfigError(
                "no OpenStack credentials: set ZunSpawner.cloud (a clouds.yaml entry), "
                "OS_CLOUD or OS_AUTH_URL and friends, or ZunSpawner.auth"
            )
        session = metrics.instrument_session(region.get_session())
    except CloudConfigError:
        raise
    except (sdk_exc.ConfigException, ks_exc.ClientException, KeyError, ValueError) as e:
        raise CloudConfigError(f"{label}: {_describe(e)}") from None
    return CloudContext(
        session=session,
        region_name=region.get_region_name("container") or None,
        interface=region.get_interface("container") or None,
        source=label,
        cloud_region=region,
    )


def _key(*parts):
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def get_cloud(cloud=None, auth=None, region_name=None, interface=None, verify=None, cacert=None):
    """The shared :class:`CloudContext` for these settings (created on first use).

    Configuration is read on first use, not at import, so settings and environment
    made later still count.  The cache key includes the environment's ``OS_*``
    variables, so a changed environment gives a fresh session.
    """
    env = {k: v for k, v in os.environ.items() if k.startswith("OS_")}
    key = _key(cloud, auth, region_name, interface, verify, cacert, env)
    with _lock:
        found = _cache.get(key)
        if found is None:
            found = _cache[key] = load_cloud(
                cloud, auth, region_name, interface, verify, cacert
            )
            log.info("Using OpenStack credentials from %s", found.source)
        return found


def on_reset(hook):
    """Have :func:`reset` call ``hook()`` first: a registry of things made per client."""
    _reset_hooks.append(hook)
    return hook


def reset():
    """Forget every cloud context and close its clients (tests, reconfiguration).

    What was made per client elsewhere (the hub's pollers and janitors) is
    stopped first, through the hooks registered with :func:`on_reset`.
    """
    for hook in _reset_hooks:
        hook()
    with _lock:
        found = list(_cache.values())
        _cache.clear()
    for context in found:
        context.close()
