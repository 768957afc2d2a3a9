"""The options form: the spawn page's flavor and image radio groups.

JupyterHub calls :func:`render_options_form` for the page,
:func:`options_from_form` for what the browser sent, and
:func:`apply_user_options` before starting, so a bad choice is refused early.
"""

from jinja2 import Environment, PackageLoader, select_autoescape

from .choice import OPTION_FLAVOR, OPTION_IMAGE

_env = None


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


def render(offer, place_note=None):
    """The form's HTML for an :class:`~.choice.Offer`, or "" when there is no choice.

    ``place_note``: a sentence saying where the server will run (several places).
    """
    if len(offer.flavors) <= 1 and len(offer.images) <= 1 and not place_note:
        return ""
    return _template().render(
        place_note=place_note,
        flavors=list(offer.flavors.values()),
        default_flavor=offer.default_flavor,
        images=list(offer.images.values()),
        default_image=offer.default_image,
        flavor_key=OPTION_FLAVOR,
        image_key=OPTION_IMAGE,
    )


async def render_options_form(spawner):
    """The ``options_form`` callable: the form for this user, or "" for no form.

    Group overrides are applied first (JupyterHub applies them only just before
    start), so that the form lists what this user will really be allowed.
    """
    apply_overrides = getattr(spawner, "apply_group_overrides", None)
    if apply_overrides is not None:
        await apply_overrides()
    place_note = getattr(spawner, "place_note", None)
    note = await place_note() if place_note is not None else None
    return render(await spawner.flavor_offer(), note)


def options_from_form(form_data):
    """The options form's data as ``user_options``.

    Form fields arrive as lists of strings; a field sent once becomes its string.
    Anything else is kept as it came, so that :func:`~.choice.choose` refuses it
    with a message (one rule for the form and the REST API).
    """
    options = {}
    for key, value in form_data.items():
        if key == "_xsrf":
            continue
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        options[key] = value
    return options


async def apply_user_options(spawner, user_options):
    """The ``apply_user_options`` hook: check the choice as soon as JupyterHub asks.

    JupyterHub runs it before ``pre_spawn_hook`` and ``start()``; ``start()``
    checks again (``apply_flavor``), so an operator's own hook loses nothing.
    """
    await spawner.apply_flavor(user_options)
