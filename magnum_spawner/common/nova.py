"""Nova flavors offered as flavors (``flavors_from_nova``): read once per cloud.

openstacksdk is synchronous: the read runs on a thread, so the hub's event loop
never waits on Nova.  A flavor read is kept in the cloud context for the life of
the hub.
"""

import asyncio

from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc

from .catalog import CPU_POLICIES, parse_flavor


class NovaFlavorError(Exception):
    """A Nova flavor could not be read or does not fit Zun."""


def fetch_flavor(cloud, name):
    """Read Nova flavor ``name`` (blocking) as a :class:`~.catalog.Flavor`."""
    try:
        found = cloud.connection().compute.find_flavor(name, ignore_missing=False)
    except sdk_exc.DuplicateResource:
        raise NovaFlavorError(f"more than one Nova flavor is named {name!r}") from None
    except sdk_exc.NotFoundException:
        raise NovaFlavorError(f"there is no Nova flavor named {name!r}") from None
    except (sdk_exc.SDKException, ks_exc.ClientException) as e:
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NovaFlavorError(f"could not read Nova flavor {name!r}: {text}") from None
    specs = getattr(found, "extra_specs", None) or {}
    policy = specs.get("hw:cpu_policy")
    spec = {
        "cpu": found.vcpus,
        "memory": found.ram,
        "disk": found.disk or None,
        "display_name": name,
        "description": getattr(found, "description", None) or "",
    }
    if policy in CPU_POLICIES:
        spec["cpu_policy"] = policy
    try:
        return parse_flavor(name, spec)
    except ValueError as e:
        raise NovaFlavorError(f"Nova {e}") from None


async def nova_flavor(cloud, name):
    """Nova flavor ``name`` of a cloud context, read on first use."""
    key = ("nova-flavor", name)
    flavor = cloud.cached(key)
    if flavor is None:
        found = await asyncio.to_thread(fetch_flavor, cloud, name)
        flavor = cloud.shared(key, lambda: found)
    return flavor
