"""Flavors and images: the traits, and what one user may choose from them.

A *flavor* is a named size (vCPUs, memory, optionally disk and Zun's
``cpu_policy``); an *image* is a container image a user may pick.  The operator
lists them (``flavors``, ``images``, optionally ``flavors_from_nova``); who may
pick what is ``allowed_flavors`` / ``allowed_images`` and JupyterHub's
``group_overrides``.

The way of a user's choice: the options form (``options_form``) or the REST API
puts ``{"flavor": NAME, "image": NAME}`` into ``user_options``;
:meth:`FlavorMixin.apply_flavor` reads this user's :class:`~.choice.Offer`
(configuration, callables, Nova) and hands both to the pure
:func:`~.choice.choose`, which returns the :class:`~.choice.Choice` - or a 400
naming the problem, before any container is made.  The spawner passes the
Choice to its body builder.  The chosen flavor and image are also written back
into ``user_options`` (shown by the REST API and the admin page), into the
spawner state (``flavor``, ``image``) and onto the container as the labels
``hub.jupyter.org/flavor`` and ``hub.jupyter.org/image``.
"""

import copy

from jupyterhub.spawner import SpawnException
from traitlets import Callable, Dict, List, TraitError, Unicode, Union, default, validate

from . import options_form
from .catalog import DEFAULT_FLAVOR, DEFAULT_FLAVORS, parse_flavors, parse_images
from .choice import OPTION_KEYS, Offer, choose
from .errors import spawn_error
from .nova import NovaFlavorError, nova_flavor
from .host import Host

_warned_limits = False


class FlavorMixin(Host):
    """Traits and steps for named sizes and images.

    The spawner calls ``await self.apply_flavor()`` first of all in start(): it
    checks ``user_options``, sets ``mem_limit``/``cpu_limit`` from the chosen
    flavor and returns the :class:`~.choice.Choice` to build the request from.
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
    state_fields = ({"flavor": "flavor_name"}, {"image": "image_name"})

    @default("flavors")
    def _default_flavors(self):
        return copy.deepcopy(DEFAULT_FLAVORS)

    @default("images")
    def _default_images(self):
        return {}

    @default("options_form")
    def _default_options_form(self):
        return options_form.render_options_form

    @default("options_from_form")
    def _default_options_from_form(self):
        return options_form.options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return options_form.apply_user_options

    # -- configuration checks -------------------------------------------------

    def _config_error(self, trait, error):
        return TraitError(f"{type(self).__name__}.{trait}: {error}")

    def _check_default(self, kind, chosen, table):
        """A TraitError when the default ``kind`` is not one of ``table``."""
        names = list(table) + (list(self.flavors_from_nova) if kind == "flavor" else [])
        if chosen is not None and chosen not in names:
            raise self._config_error(
                f"default_{kind}",
                f"{chosen!r} is not one of the {kind}s ({', '.join(names) or 'none'})",
            )

    def _check_table(self, kind, table, parse):
        """Parse the ``kind`` table now, and keep the configured default on it."""
        try:
            parse(table)
        except ValueError as e:
            raise self._config_error(f"{kind}s", e) from None
        self._check_default(kind, self._trait_values.get(f"default_{kind}"), table)

    @validate("flavors")
    def _validate_flavors(self, proposal):
        if isinstance(proposal["value"], dict):
            self._check_table("flavor", proposal["value"], parse_flavors)
        return proposal["value"]

    @validate("default_flavor")
    def _validate_default_flavor(self, proposal):
        if isinstance(self.flavors, dict):
            self._check_default("flavor", proposal["value"], self.flavors)
        return proposal["value"]

    @validate("images")
    def _validate_images(self, proposal):
        if isinstance(proposal["value"], (dict, list)):
            self._check_table("image", proposal["value"], parse_images)
        return proposal["value"]

    @validate("default_image")
    def _validate_default_image(self, proposal):
        if isinstance(self.images, (dict, list)):
            self._check_default("image", proposal["value"], self.images)
        return proposal["value"]

    # -- what this user may choose ---------------------------------------------

    def _misconfigured(self, message):
        return spawn_error(
            f"{message}. Tell your administrator.",
            reason="flavor-config",
            log_message=f"Flavor configuration error for {self._log_name}: {message}",
        )

    async def _nova_flavors(self):
        names = list(self.flavors_from_nova)
        if not names:
            return {}
        try:
            cloud = self.cloud_context()
        except Exception as e:  # CloudConfigError: no credentials
            raise self._misconfigured(
                f"Cannot read Nova flavor {names[0]!r}: {e}"
            ) from None
        found = {}
        for name in names:
            try:
                found[name] = await nova_flavor(cloud, name)
            except NovaFlavorError as e:
                raise self._misconfigured(str(e)[:1].upper() + str(e)[1:]) from None
        return found

    async def _flavor_table(self):
        """Every configured flavor ``{name: Flavor}`` (not only this user's)."""
        table = await self.resolve(self.flavors)
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
        table = await self.resolve(self.images)
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
        allowed = await self.resolve(getattr(self, trait))
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

    async def flavor_offer(self):
        """The :class:`~.choice.Offer` to this user (after group overrides, if applied)."""
        flavors = await self._flavor_table()
        images = await self._image_table()
        mine = await self._allowed("allowed_flavors", flavors)
        my_images = await self._allowed("allowed_images", images)
        wanted = self.default_flavor or DEFAULT_FLAVOR
        default_flavor = wanted if wanted in mine else next(iter(mine), None)
        wanted = self.default_image
        if wanted is None and isinstance(self.image, str):
            wanted = self.image
        default_image = wanted if wanted in my_images else next(iter(my_images), None)
        return Offer(
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
        return set(OPTION_KEYS)

    async def apply_flavor(self, user_options=None):
        """Check user_options and apply the choice; return the :class:`~.choice.Choice`.

        ``user_options`` defaults to ``self.user_options``; afterwards
        ``self.user_options`` holds the checked choice (with the defaults used),
        ``mem_limit``/``cpu_limit`` the chosen flavor's size (JupyterHub passes
        them to the server as ``MEM_LIMIT``/``CPU_LIMIT``) and ``flavor_name``/
        ``image_name`` the names kept in the state.

        Raises SpawnException(400) for bad user input, (500) for a configuration
        the cloud would refuse.  Makes no cloud call unless Nova flavors are read.
        """
        options = self.user_options if user_options is None else user_options
        offer = await self.flavor_offer()
        try:
            choice = choose(
                offer, options,
                accepted=self.user_option_keys(),
                image=None if offer.images else await self.resolve(self.image),
                mem_limit=self.mem_limit,
                cpu_limit=self.cpu_limit,
            )
        except SpawnException as e:
            e.log_message = f"Refused user_options for {self._log_name}: {e.log_message}"
            raise
        if choice.flavor is not None:
            self._warn_limits_ignored()
            self.mem_limit, self.cpu_limit = choice.mem_limit, choice.cpu_limit
            self.log.info(
                "%s: flavor %s (%s), image %s",
                self._log_name, choice.flavor_name, choice.flavor.summary, choice.image,
            )
        self.flavor_name = choice.flavor_name
        self.image_name = choice.image
        # a new dict: JupyterHub's database row may hold the old one
        self.user_options = choice.user_options
        return choice

    def _warn_limits_ignored(self):
        """Say so once when configured mem_limit/cpu_limit lose to a flavor."""
        global _warned_limits
        if _warned_limits:
            return
        for cls in type(self).mro():
            name = cls.__name__
            section = self.config.get(name) if name in self.config else None
            for trait in ("mem_limit", "cpu_limit"):
                if section is not None and trait in section:
                    _warned_limits = True
                    self.log.warning(
                        "%s.%s is configured but flavors are in use: the chosen "
                        "flavor sets it. Set %s.flavors = {} to use %s instead.",
                        name, trait, name, trait,
                    )
                    return
