"""The user's choice of flavor and image, checked against what is offered.

Pure: :func:`choose` takes what this user may pick (an :class:`Offer`) and the
``user_options`` from the form or the REST API, and returns a :class:`Choice`
(flavor, image, sizes, labels, the checked options) or raises the SpawnException
the user sees.  Any spawner passes the Choice on to what builds its request.
"""

from dataclasses import dataclass, field

from .catalog import MAX_NAME_LENGTH, MIB
from .errors import spawn_error
from .names import LABEL_FLAVOR, LABEL_IMAGE

#: The user_options keys read here.
OPTION_FLAVOR = "flavor"
OPTION_IMAGE = "image"
#: JupyterHub's admin page shows ``user_options["profile"]`` in its "Profile"
#: column (KubeSpawner's key): the chosen flavor is written there too, and
#: accepted on input as another name for ``flavor``.
OPTION_PROFILE = "profile"
OPTION_KEYS = frozenset({OPTION_FLAVOR, OPTION_IMAGE, OPTION_PROFILE})


@dataclass(frozen=True)
class Offer:
    """What one user may choose now: ``{name: Flavor}``, ``{name: Image}``."""

    flavors: dict
    default_flavor: str | None
    images: dict
    default_image: str | None
    #: every configured flavor/image name (allowed or not), for messages
    all_flavors: frozenset = frozenset()
    all_images: frozenset = frozenset()


@dataclass(frozen=True)
class Choice:
    """What runs: the flavor (None: no flavors), the image and the sizes."""

    flavor: object
    image: str | None
    #: bytes and vCPUs: the flavor's, else the configured ``mem_limit``/``cpu_limit``
    mem_limit: int | None
    cpu_limit: float | None
    #: the checked ``user_options``, with the defaults that were used
    user_options: dict = field(default_factory=dict)

    @property
    def flavor_name(self):
        return self.flavor.name if self.flavor else None

    @property
    def cpu_policy(self):
        """Zun ``cpu_policy`` (None: Zun's default, shared)."""
        return self.flavor.cpu_policy if self.flavor else None

    @property
    def disk(self):
        """Zun ``disk`` in GiB (None: not sent)."""
        return self.flavor.disk if self.flavor else None

    @property
    def labels(self):
        """Labels recording the chosen flavor and image."""
        labels = {}
        if self.flavor_name:
            labels[LABEL_FLAVOR] = self.flavor_name
        if self.image:
            labels[LABEL_IMAGE] = self.image
        return labels


def bad_option(message):
    return spawn_error(message, reason="user-options", status_code=400)


def choose(offer, user_options, *, accepted=OPTION_KEYS, image=None,
           mem_limit=None, cpu_limit=None):
    """Check ``user_options`` against ``offer``; the :class:`Choice` or a SpawnException.

    ``image``, ``mem_limit`` and ``cpu_limit`` are the configured values, used
    when the offer has no images or no flavors.  Bad user input is a 400 (403
    when nothing at all is offered to this user) naming the problem.
    """
    options = user_options
    if not isinstance(options, dict):
        raise bad_option(f"user_options must be a JSON object, not {_describe_type(options)}")
    unknown = [key for key in options if key not in accepted]
    if unknown:
        shown = ", ".join(_show(k) for k in unknown[:3])
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise bad_option(
            f"Unknown option{'s' if len(unknown) > 1 else ''} {shown}{more}; "
            f"this hub accepts: {', '.join(sorted(accepted))}"
        )
    flavor_key = OPTION_FLAVOR
    if options.get(OPTION_PROFILE) is not None:
        if options.get(OPTION_FLAVOR) is None:
            flavor_key = OPTION_PROFILE
        elif options[OPTION_FLAVOR] != options[OPTION_PROFILE]:
            raise bad_option(
                "The profile and flavor options differ; profile is another "
                "name for flavor: send one of them"
            )
    flavor_name = _pick(
        OPTION_FLAVOR, options, offer.flavors, offer.all_flavors, offer.default_flavor,
        key=flavor_key,
    )
    image_name = _pick(
        OPTION_IMAGE, options, offer.images, offer.all_images, offer.default_image,
    )
    flavor = offer.flavors.get(flavor_name) if flavor_name else None
    if flavor is not None:
        mem_limit, cpu_limit = flavor.memory * MIB, flavor.cpu
    if image_name is None:
        image_name = image

    chosen = {k: v for k, v in options.items() if k not in OPTION_KEYS}
    if flavor_name is not None:
        chosen[OPTION_FLAVOR] = chosen[OPTION_PROFILE] = flavor_name
    if offer.images:
        chosen[OPTION_IMAGE] = image_name
    return Choice(
        flavor=flavor,
        image=image_name if isinstance(image_name, str) else None,
        mem_limit=mem_limit,
        cpu_limit=cpu_limit,
        user_options=chosen,
    )


def _pick(kind, options, offered, every, default, key=None):
    """The name chosen for ``kind`` ("flavor" or "image"), or a 400."""
    key = key or kind
    if every and not offered:
        raise spawn_error(
            f"No {kind} is available to you; ask your administrator for access",
            reason="user-options",
            status_code=403,
        )
    if options.get(key) is None:
        return default
    value = options[key]
    if not isinstance(value, str):
        raise bad_option(
            f"The {key} option must be the name of a {kind} (a string), "
            f"not {_describe_type(value)}"
        )
    if len(value) > MAX_NAME_LENGTH:
        raise bad_option(
            f"The {key} option is {len(value)} characters long; "
            f"{kind} names have at most {MAX_NAME_LENGTH}"
        )
    if value in offered:
        return value
    if not every:
        raise bad_option(
            f"This hub offers no choice of {kind}; "
            f"leave out the {key} option (got {_show(value)})"
        )
    names = ", ".join(offered) or "none"
    if value in every:
        raise bad_option(
            f"The {kind} {_show(value)} is not available to you; "
            f"choose one of: {names}"
        )
    raise bad_option(f"There is no {kind} named {_show(value)}; choose one of: {names}")


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
