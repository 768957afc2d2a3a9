"""Flavors, images and the options form.

A *flavor* is a named size (vCPUs, memory, optionally disk and Zun's
``cpu_policy``); an *image* is a container image a user may pick.  The operator
lists them (``flavors``, ``images``, optionally ``flavors_from_nova``); who may
pick what is ``allowed_flavors`` / ``allowed_images`` and JupyterHub's
``group_overrides``.

A user's choice arrives in ``user_options`` as ``{"flavor": NAME, "image": NAME}``
from the options form or the REST API.  Both are checked the same way at the top
of ``start()`` (``apply_flavor``), before any cloud call: anything but a string
naming an offered choice is an HTTP 400 naming the problem, and no container is
made.  The chosen flavor and image are written back into ``user_options`` (shown
by the REST API and the admin page), into the spawner state (``flavor``,
``image``) and onto the container as the labels ``hub.jupyter.org/flavor`` and
``hub.jupyter.org/image``.
"""

import asyncio
import copy
import inspect
import math
import threading
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, select_autoescape
from jupyterhub.spawner import SpawnException
from traitlets import (
    Callable,
    Dict,
    List,
    TraitError,
    Unicode,
    Union,
    default,
    validate,
)
from traitlets.config import Configurable

from . import objects

MIB = objects.MIB
LABEL_FLAVOR = objects.LABEL_PREFIX + "flavor"
LABEL_IMAGE = objects.LABEL_PREFIX + "image"

#: The user_options keys this mixin reads.
OPTION_FLAVOR = "flavor"
OPTION_IMAGE = "image"
#: JupyterHub's admin page shows ``user_options["profile"]`` in its "Profile"
#: column (KubeSpawner's key): the chosen flavor is written there too, and
#: accepted on input as another name for ``flavor``.
OPTION_PROFILE = "profile"
#: Longest flavor or image name accepted (in configuration and in user_options).
MAX_NAME_LENGTH = 255
CPU_POLICIES = ("shared", "dedicated")
_FLAVOR_KEYS = ("cpu", "memory", "disk", "cpu_policy", "display_name", "description")
_IMAGE_KEYS = ("display_name", "description")

#: The hub's sizes before flavors existed (1 vCPU, 2 GiB) is "standard".
DEFAULT_FLAVORS = {
    "small": {
        "cpu": 0.5,
        "memory": 1024,
        "display_name": "Small",
        "description": "Half a CPU and 1 GiB of memory: reading and light editing.",
    },
    "standard": {
        "cpu": 1.0,
        "memory": 2048,
        "display_name": "Standard",
        "description": "One CPU and 2 GiB of memory.",
    },
    "large": {
        "cpu": 2.0,
        "memory": 4096,
        "display_name": "Large",
        "description": "Two CPUs and 4 GiB of memory: heavier computations.",
    },
}
DEFAULT_FLAVOR = "standard"


@dataclass(frozen=True)
class Flavor:
    name: str
    cpu: float
    memory: int
    disk: int | None = None
    cpu_policy: str | None = None
    display_name: str = ""
    description: str = ""

    @property
    def summary(self):
        """``1 vCPU, 2048 MiB memory`` (plus disk and pinning when set)."""
        cpu = f"{self.cpu:g} vCPU" + ("" if self.cpu == 1 else "s")
        parts = [cpu, f"{self.memory} MiB memory"]
        if self.disk:
            parts.append(f"{self.disk} GiB disk")
        if self.cpu_policy == "dedicated":
            parts.append("dedicated cores")
        return ", ".join(parts)


@dataclass(frozen=True)
class Image:
    name: str
    display_name: str = ""
    description: str = ""


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_name(kind, name):
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{kind} names must be non-empty strings, not {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{kind} name {name[:40]!r}... is longer than {MAX_NAME_LENGTH} characters"
        )


def _text(where, key, value):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key} must be a string, not {value!r}")
    return value


def parse_flavor(name, spec):
    """A :class:`Flavor` from its configuration; ValueError naming the flavor."""
    _check_name("flavor", name)
    where = f"flavor {name!r}"
    if not isinstance(spec, dict):
        raise ValueError(f"{where} must be a dict with cpu and memory, not {spec!r}")
    unknown = sorted(str(k) for k in spec if k not in _FLAVOR_KEYS)
    if unknown:
        raise ValueError(
            f"{where} has unknown key(s) {', '.join(unknown)}; "
            f"use {', '.join(_FLAVOR_KEYS)}"
        )
    cpu = spec.get("cpu")
    memory = spec.get("memory")
    if not _is_number(cpu) or not math.isfinite(cpu):
        raise ValueError(f"{where}: cpu must be a number of vCPUs, not {cpu!r}")
    if not _is_number(memory) or memory != int(memory):
        raise ValueError(f"{where}: memory must be a whole number of MiB, not {memory!r}")
    memory = int(memory)
    objects.check_cpu(cpu, what=f"{where} cpu")
    objects.check_memory_mib(memory, what=f"{where} memory")
    disk = spec.get("disk")
    if disk is not None:
        if not _is_number(disk) or disk != int(disk) or disk < 0:
            raise ValueError(f"{where}: disk must be a whole number of GiB, not {disk!r}")
        disk = int(disk) or None
    policy = spec.get("cpu_policy")
    if policy is not None:
        if policy not in CPU_POLICIES:
            raise ValueError(
                f"{where}: cpu_policy must be 'shared' or 'dedicated', not {policy!r}"
            )
        if policy == "dedicated" and cpu != int(cpu):
            raise ValueError(
                f"{where}: cpu_policy 'dedicated' pins whole cores; "
                f"cpu must be a whole number, not {cpu!r}"
            )
    return Flavor(
        name=name,
        cpu=float(cpu),
        memory=memory,
        disk=disk,
        cpu_policy=policy,
        display_name=_text(where, "display_name", spec.get("display_name")) or name,
        description=_text(where, "description", spec.get("description")),
    )


def parse_image(name, spec):
    """An :class:`Image` from its configuration (a dict or a display name)."""
    _check_name("image", name)
    where = f"image {name!r}"
    if spec is None:
        spec = {}
    elif isinstance(spec, str):
        spec = {"display_name": spec}
    if not isinstance(spec, dict):
        raise ValueError(
            f"{where} must be a display name or a dict with display_name and "
            f"description, not {spec!r}"
        )
    unknown = sorted(str(k) for k in spec if k not in _IMAGE_KEYS)
    if unknown:
        raise ValueError(
            f"{where} has unknown key(s) {', '.join(unknown)}; use {', '.join(_IMAGE_KEYS)}"
        )
    return Image(
        name=name,
        display_name=_text(where, "display_name", spec.get("display_name")) or name,
        description=_text(where, "description", spec.get("description")),
    )


def parse_flavors(table):
    return {name: parse_flavor(name, spec) for name, spec in table.items()}


def parse_images(table):
    if isinstance(table, (list, tuple)):
        table = {name: None for name in table}
    return {name: parse_image(name, spec) for name, spec in table.items()}


def options_from_form(form_data):
    """The options form's data as ``user_options``.

    Form fields arrive as lists of strings; a field sent once becomes its string.
    Anything else is kept as it came, so that the checks in ``apply_flavor``
    refuse it with a message (one rule for the form and the REST API).
    """
    options = {}
    for key, value in form_data.items():
        if key == "_xsrf":
            continue
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        options[key] = value
    return options


async def render_options_form(spawner):
    """The ``options_form`` callable: the form for this user, or "" for no form.

    Group overrides are applied first (JupyterHub applies them only just before
    start), so that the form lists what this user will really be allowed.
    """
    apply_overrides = getattr(spawner, "apply_group_overrides", None)
    if apply_overrides is not None:
        await apply_overrides()
    choices = await spawner.flavor_choices()
    if len(choices.flavors) <= 1 and len(choices.images) <= 1:
        return ""
    return _template().render(
        flavors=list(choices.flavors.values()),
        default_flavor=choices.default_flavor,
        images=list(choices.images.values()),
        default_image=choices.default_image,
        flavor_key=OPTION_FLAVOR,
        image_key=OPTION_IMAGE,
    )


async def apply_user_options(spawner, user_options):
    """The ``apply_user_options`` hook: check the choice as soon as JupyterHub asks.

    JupyterHub runs it before ``pre_spawn_hook`` and ``start()``; ``start()``
    checks again (``apply_flavor``), so an operator's own hook loses nothing.
    """
    await spawner.apply_flavor(user_options)


_env = None
_warned_limits = False


def _template():
    global _env
    if _env is None:
        _env = Environment(
            loader=PackageLoader("magnum_spawner", "templates"),
            autoescape=select_autoescape(["html"], default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
    return _env.get_template("options_form.html")


@dataclass(frozen=True)
class Choices:
    """What one user may choose now: ``{name: Flavor}``, ``{name: Image}``."""

    flavors: dict
    default_flavor: str | None
    images: dict
    default_image: str | None
    #: every configured flavor/image name (allowed or not), for messages
    all_flavors: frozenset = frozenset()
    all_images: frozenset = frozenset()


# -- Nova flavors -----------------------------------------------------------------

_nova_lock = threading.Lock()
_nova_cache = {}


def reset_nova_cache():
    """Forget the Nova flavors read so far (tests, reconfiguration)."""
    with _nova_lock:
        _nova_cache.clear()


class NovaFlavorError(Exception):
    """A Nova flavor could not be read or does not fit Zun."""


def fetch_nova_flavor(cloud, name):
    """Read Nova flavor ``name`` (blocking) as a :class:`Flavor`."""
    from keystoneauth1 import exceptions as ks_exc
    from openstack import connection
    from openstack import exceptions as sdk_exc

    kwargs = {}
    if cloud.region_name:
        kwargs["region_name"] = cloud.region_name
    if cloud.interface:
        kwargs["interface"] = cloud.interface
    try:
        conn = connection.Connection(session=cloud.session, **kwargs)
        found = conn.compute.find_flavor(name, ignore_missing=False)
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


# -- the mixin --------------------------------------------------------------------


class FlavorMixin(Configurable):
    """Traits and steps for named sizes and images.

    ZunSpawner calls, in start():
    - ``await self.apply_flavor()`` first of all: validate ``user_options`` and set
      ``image``, ``mem_limit`` and ``cpu_limit`` from the chosen flavor and image;
    - ``self.flavor_cpu_policy()``, ``self.flavor_disk()`` and
      ``self.extra_labels()`` while building the create body.
    """

    flavors = Union(
        [Dict(), Callable()],
        config=True,
        help="""
        Named sizes a user may choose, in the order the form shows them::

            c.ZunSpawner.flavors = {
                "small": {"cpu": 0.5, "memory": 1024, "display_name": "Small"},
                "standard": {"cpu": 1, "memory": 2048, "description": "..."},
                "pinned": {"cpu": 2, "memory": 4096, "cpu_policy": "dedicated",
                           "disk": 20},
            }

        ``cpu`` is vCPUs (Zun accepts 0.1-16), ``memory`` MiB (4-8192), ``disk``
        GiB (optional; needs a Zun storage driver that supports it).
        ``cpu_policy`` is Zun's: ``shared`` (the default: ``cpu`` is a weight
        when the host is busy, 1024 shares per vCPU, plus a quota) or
        ``dedicated`` (whole cores pinned to the container).  A flavor outside
        Zun's ranges stops the hub with a message naming it.

        The default has ``small`` (0.5 vCPU, 1024 MiB), ``standard`` (1 vCPU, 2048
        MiB, the hub's size before flavors) and ``large`` (2 vCPUs, 4096 MiB).
        Set ``{}`` to offer no choice and use ``mem_limit``/``cpu_limit`` as
        configured.  May be a callable taking the spawner (it may be async) that
        returns such a dict.  ``group_overrides`` may change it per group (the
        dict is merged; a flavor set to None is removed).
        """,
    )

    default_flavor = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""
        The flavor used when the user picks none (and preselected in the form).
        Must be one of :attr:`flavors` (or :attr:`flavors_from_nova`).  Default:
        ``standard`` when there is one, else the first flavor.  When a user may not
        use it, the first flavor they may use is the default.
        """,
    )

    flavors_from_nova = List(
        Unicode(),
        config=True,
        help="""
        Names of Nova flavors to offer as well, read from the cloud's compute
        service (vcpus, ram MiB, disk GiB, ``hw:cpu_policy``) on first use and
        cached for the life of the hub.  A flavor that cannot be read, or whose
        size Zun does not accept, stops the spawn with a message naming it.
        """,
    )

    allowed_flavors = Union(
        [List(Unicode()), Callable()],
        default_value=None,
        allow_none=True,
        config=True,
        help="""
        Names of the flavors this user may choose (default: all).  A callable
        taking the spawner (it may be async) may decide per user; or use
        ``group_overrides``, e.g. to give staff a larger flavor::

            c.ZunSpawner.allowed_flavors = ["small", "standard"]
            c.ZunSpawner.group_overrides = {
                "staff": {"groups": ["staff"], "spawner_override":
                          {"allowed_flavors": ["small", "standard", "large"]}},
            }
        """,
    )

    images = Union(
        [Dict(), List(Unicode()), Callable()],
        config=True,
        help="""
        Images a user may choose: ``{image: {"display_name": ..., "description":
        ...}}`` (or ``{image: display name}``, or a list of images).  An image not
        listed is refused.  Default: empty, no choice: :attr:`image` is used.  May
        be a callable taking the spawner (it may be async).
        """,
    )

    default_image = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""
        The image used when the user picks none; must be one of :attr:`images`.
        Default: :attr:`image` when it is listed, else the first image.
        """,
    )

    allowed_images = Union(
        [List(Unicode()), Callable()],
        default_value=None,
        allow_none=True,
        config=True,
        help="Images this user may choose (default: all of :attr:`images`); "
        "may be a callable taking the spawner (it may be async).",
    )

    # -- state ----------------------------------------------------------------

    flavor_name = Unicode(None, allow_none=True, help="The flavor of this server.")
    image_name = Unicode(None, allow_none=True, help="The image of this server.")

    @default("flavors")
    def _default_flavors(self):
        return copy.deepcopy(DEFAULT_FLAVORS)

    @default("images")
    def _default_images(self):
        return {}

    @default("options_form")
    def _default_options_form(self):
        return render_options_form

    @default("options_from_form")
    def _default_options_from_form(self):
        return options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return apply_user_options

    # -- configuration checks -------------------------------------------------

    def _config_error(self, trait, error):
        return TraitError(f"{type(self).__name__}.{trait}: {error}")

    @validate("flavors")
    def _validate_flavors(self, proposal):
        value = proposal["value"]
        if isinstance(value, dict):
            try:
                parsed = parse_flavors(value)
            except ValueError as e:
                raise self._config_error("flavors", e) from None
            chosen = self._trait_values.get("default_flavor")
            if chosen and chosen not in parsed and chosen not in self.flavors_from_nova:
                raise self._config_error(
                    "default_flavor", f"{chosen!r} is not one of the flavors"
                )
        return value

    @validate("default_flavor")
    def _validate_default_flavor(self, proposal):
        value = proposal["value"]
        table = self.flavors
        if (
            value is not None
            and isinstance(table, dict)
            and value not in table
            and value not in self.flavors_from_nova
        ):
            names = ", ".join(list(table) + list(self.flavors_from_nova)) or "none"
            raise self._config_error(
                "default_flavor", f"{value!r} is not one of the flavors ({names})"
            )
        return value

    @validate("images")
    def _validate_images(self, proposal):
        value = proposal["value"]
        if isinstance(value, (dict, list)):
            try:
                parsed = parse_images(value)
            except ValueError as e:
                raise self._config_error("images", e) from None
            chosen = self._trait_values.get("default_image")
            if chosen and chosen not in parsed:
                raise self._config_error(
                    "default_image", f"{chosen!r} is not one of the images"
                )
        return value

    @validate("default_image")
    def _validate_default_image(self, proposal):
        value = proposal["value"]
        table = self.images
        if value is not None and isinstance(table, (dict, list)) and value not in table:
            names = ", ".join(table) or "none"
            raise self._config_error(
                "default_image", f"{value!r} is not one of the images ({names})"
            )
        return value

    # -- resolving what this user may choose ------------------------------------

    async def _call(self, value):
        """A per-user setting's value: callables get the spawner, may be async."""
        if callable(value):
            value = value(self)
            if inspect.isawaitable(value):
                value = await value
        return value

    def _misconfigured(self, message):
        return SpawnException(
            f"{message}. Tell your administrator.",
            reason="flavor-config",
            status_code=500,
            log_message=f"Flavor configuration error for {self._log_name}: {message}",
        )

    async def _nova_flavors(self):
        names = list(self.flavors_from_nova)
        if not names:
            return {}
        try:
            cloud = self.cloud_session()
        except Exception as e:  # CloudConfigError: no credentials
            raise self._misconfigured(
                f"Cannot read Nova flavor {names[0]!r}: {e}"
            ) from None
        found = {}
        for name in names:
            key = (id(cloud.session), cloud.region_name, cloud.interface, name)
            with _nova_lock:
                flavor = _nova_cache.get(key)
            if flavor is None:
                try:
                    flavor = await asyncio.to_thread(fetch_nova_flavor, cloud, name)
                except NovaFlavorError as e:
                    raise self._misconfigured(str(e)[:1].upper() + str(e)[1:]) from None
                with _nova_lock:
                    _nova_cache[key] = flavor
            found[name] = flavor
        return found

    async def _flavor_table(self):
        """Every configured flavor ``{name: Flavor}`` (not only this user's)."""
        table = await self._call(self.flavors)
        if table is None:
            table = {}
        if not isinstance(table, dict):
            raise self._misconfigured(
                f"flavors must be a dict of flavors, not {type(table).__name__}"
            )
        try:
            # also when group_overrides merged into the dict (no trait validation)
            parsed = parse_flavors({k: v for k, v in table.items() if v is not None})
        except ValueError as e:
            raise self._misconfigured(f"Flavor configuration: {e}") from None
        for name, flavor in (await self._nova_flavors()).items():
            if name in parsed:
                raise self._misconfigured(
                    f"Flavor {name!r} is both in flavors and in flavors_from_nova"
                )
            parsed[name] = flavor
        return parsed

    async def _image_table(self):
        table = await self._call(self.images)
        if table is None:
            table = {}
        if not isinstance(table, (dict, list, tuple)):
            raise self._misconfigured(
                f"images must be a dict or list of images, not {type(table).__name__}"
            )
        try:
            return parse_images(table)
        except ValueError as e:
            raise self._misconfigured(f"Image configuration: {e}") from None

    async def _allowed(self, trait, table):
        allowed = await self._call(getattr(self, trait))
        if allowed is None:
            return dict(table)
        if isinstance(allowed, str) or not isinstance(allowed, (list, tuple, set)):
            raise self._misconfigured(
                f"{trait} must be a list of names, not {type(allowed).__name__}"
            )
        unknown = [name for name in allowed if name not in table]
        if unknown:
            self.log.warning(
                "%s for %s names unknown %s (ignored)",
                trait, self._log_name, ", ".join(map(repr, unknown)),
            )
        allowed = set(allowed)
        # keep the configured order
        return {name: item for name, item in table.items() if name in allowed}

    async def flavor_choices(self):
        """The :class:`Choices` of this user (after group overrides, if applied)."""
        flavors = await self._flavor_table()
        images = await self._image_table()
        mine = await self._allowed("allowed_flavors", flavors)
        my_images = await self._allowed("allowed_images", images)

        wanted = self.default_flavor or DEFAULT_FLAVOR
        if wanted in mine:
            default_flavor = wanted
        else:
            default_flavor = next(iter(mine), None)

        wanted = self.default_image
        configured = getattr(self, "_configured_image", self.image)
        if wanted is None and isinstance(configured, str):
            wanted = configured
        if wanted in my_images:
            default_image = wanted
        else:
            default_image = next(iter(my_images), None)
        return Choices(
            flavors=mine,
            default_flavor=default_flavor,
            images=my_images,
            default_image=default_image,
            all_flavors=frozenset(flavors),
            all_images=frozenset(images),
        )

    # -- checking user_options ------------------------------------------------

    def user_option_keys(self):
        """The user_options keys this spawner understands (others are refused).

        Another mixin that reads user_options adds its keys by overriding this
        and calling super().
        """
        return {OPTION_FLAVOR, OPTION_IMAGE, OPTION_PROFILE}

    def _bad_option(self, message):
        return SpawnException(
            message,
            reason="user-options",
            status_code=400,
            log_message=f"Refused user_options for {self._log_name}: {message}",
        )

    def _pick(self, kind, options, offered, every, default, key=None):
        """The name chosen for ``kind`` ("flavor" or "image"), or a 400."""
        key = key or kind
        if every and not offered:
            raise SpawnException(
                f"No {kind} is available to you; ask your administrator for access",
                reason="user-options",
                status_code=403,
            )
        if options.get(key) is None:
            return default
        value = options[key]
        if not isinstance(value, str):
            raise self._bad_option(
                f"The {key} option must be the name of a {kind} (a string), "
                f"not {_describe_type(value)}"
            )
        if len(value) > MAX_NAME_LENGTH:
            raise self._bad_option(
                f"The {key} option is {len(value)} characters long; "
                f"{kind} names have at most {MAX_NAME_LENGTH}"
            )
        if value in offered:
            return value
        if not every:
            raise self._bad_option(
                f"This hub offers no choice of {kind}; "
                f"leave out the {key} option (got {_show(value)})"
            )
        names = ", ".join(offered) or "none"
        if value in every:
            raise self._bad_option(
                f"The {kind} {_show(value)} is not available to you; "
                f"choose one of: {names}"
            )
        raise self._bad_option(
            f"There is no {kind} named {_show(value)}; choose one of: {names}"
        )

    async def apply_flavor(self, user_options=None):
        """Validate user_options and apply the chosen flavor and image.

        ``user_options`` defaults to ``self.user_options``; afterwards
        ``self.user_options`` holds the checked choice (with the defaults used).

        Raises SpawnException(400) for bad user input, (500) for a configuration
        the cloud would refuse.  Makes no cloud call unless Nova flavors are read.
        """
        options = self.user_options if user_options is None else user_options
        if not isinstance(options, dict):
            raise self._bad_option(
                f"user_options must be a JSON object, not {_describe_type(options)}"
            )
        accepted = self.user_option_keys()
        unknown = [key for key in options if key not in accepted]
        if unknown:
            shown = ", ".join(_show(k) for k in unknown[:3])
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise self._bad_option(
                f"Unknown option{'s' if len(unknown) > 1 else ''} {shown}{more}; "
                f"this hub accepts: {', '.join(sorted(accepted))}"
            )
        flavor_key = OPTION_FLAVOR
        if options.get(OPTION_PROFILE) is not None:
            if options.get(OPTION_FLAVOR) is None:
                flavor_key = OPTION_PROFILE
            elif options[OPTION_FLAVOR] != options[OPTION_PROFILE]:
                raise self._bad_option(
                    "The profile and flavor options differ; profile is another "
                    "name for flavor: send one of them"
                )
        choices = await self.flavor_choices()
        flavor_name = self._pick(
            OPTION_FLAVOR, options, choices.flavors, choices.all_flavors,
            choices.default_flavor, key=flavor_key,
        )
        image_name = self._pick(
            OPTION_IMAGE, options, choices.images, choices.all_images,
            choices.default_image,
        )

        flavor = choices.flavors.get(flavor_name) if flavor_name else None
        self._flavor = flavor
        if flavor is not None:
            self._warn_limits_ignored()
            self.mem_limit = flavor.memory * MIB
            self.cpu_limit = flavor.cpu
        if image_name is not None:
            if not hasattr(self, "_configured_image"):
                # the operator's image stays the default of later spawns
                self._configured_image = self.image
            self.image = image_name
        else:
            image_name = await self._call(self.image)
        self.flavor_name = flavor_name
        self.image_name = image_name if isinstance(image_name, str) else None

        ours = (OPTION_FLAVOR, OPTION_IMAGE, OPTION_PROFILE)
        chosen = {k: v for k, v in options.items() if k not in ours}
        if flavor_name is not None:
            chosen[OPTION_FLAVOR] = chosen[OPTION_PROFILE] = flavor_name
        if choices.images:
            chosen[OPTION_IMAGE] = image_name
        # a new dict: JupyterHub's database row may hold the old one
        self.user_options = chosen
        if flavor is not None:
            self.log.info(
                "%s: flavor %s (%s), image %s",
                self._log_name, flavor_name, flavor.summary, self.image_name,
            )

    def _warn_limits_ignored(self):
        """Say so once when configured mem_limit/cpu_limit lose to a flavor."""
        global _warned_limits
        if _warned_limits:
            return
        for cls in type(self).mro():
            name = cls.__name__
            if not self.config._has_section(name):
                continue
            section = self.config[name]
            for trait in ("mem_limit", "cpu_limit"):
                if trait in section:
                    _warned_limits = True
                    self.log.warning(
                        "%s.%s is configured but flavors are in use: the chosen "
                        "flavor sets it. Set %s.flavors = {} to use %s instead.",
                        name, trait, name, trait,
                    )
                    return

    # -- used while building the create body ------------------------------------

    def flavor_cpu_policy(self):
        """Zun ``cpu_policy`` for the chosen flavor (None: Zun's default, shared)."""
        flavor = getattr(self, "_flavor", None)
        return flavor.cpu_policy if flavor else None

    def flavor_disk(self):
        """Zun ``disk`` (GiB) for the chosen flavor (None: not sent)."""
        flavor = getattr(self, "_flavor", None)
        return flavor.disk if flavor else None

    def extra_labels(self):
        """Labels recording the chosen flavor and image."""
        labels = {}
        if self.flavor_name:
            labels[LABEL_FLAVOR] = str(self.flavor_name)
        if self.image_name:
            labels[LABEL_IMAGE] = str(self.image_name)
        return labels

    # -- state ----------------------------------------------------------------

    def get_state(self):
        state = super().get_state()
        if self.flavor_name:
            state["flavor"] = self.flavor_name
        if self.image_name:
            state["image"] = self.image_name
        return state

    def load_state(self, state):
        super().load_state(state)
        self.flavor_name = state.get("flavor")
        self.image_name = state.get("image")

    def clear_state(self):
        super().clear_state()
        self.flavor_name = None
        self.image_name = None
        self._flavor = None


def _describe_type(value):
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if value is None:
        return "null"
    return type(value).__name__


def _show(value, limit=40):
    """``value`` quoted for a message, cut short when long."""
    text = str(value)
    if len(text) > limit:
        return repr(text[:limit]) + "..."
    return repr(text)
