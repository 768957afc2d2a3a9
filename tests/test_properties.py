"""Property-based tests: names and user_options over generated input.

- every container name made from any user/server name is one Zun and DNS accept,
  and no two user/server pairs share a container or a home volume name;
- any ``user_options`` a client can send is either accepted or refused with a
  400 (403 for a choice the user may not have), never a 500 or a crash.

Bounded example counts and no deadline: ``make unit`` stays seconds.
"""

import asyncio
import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jupyterhub.spawner import SpawnException

from magnum_spawner.common import catalog, names, options_form

from .helpers import make_spawner

FAST = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
FEWER = settings(FAST, max_examples=40)

#: Zun's container name pattern (zun/api/controllers/v1/schemas/parameter_types.py)
#: as a whole-string match: ``$`` would let a trailing newline through.
ZUN_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
#: Cinder's volume name: any string of at most 255 characters.
CINDER_MAX = 255

# JupyterHub names: anything but "/" (it splits URLs); the few characters that
# make slugs tricky are drawn often so that near-collisions are tried.
_tricky = st.sampled_from(["-", "--", "---", ".", "_", "a", "A", "0", "é", "Ω", " ", "\n",
                           "x" * 25])
_any = st.characters(blacklist_characters="/", blacklist_categories=("Cs",))
name_text = st.lists(st.one_of(_tricky, st.text(_any, min_size=1, max_size=3)),
                     min_size=1, max_size=12).map("".join)
user_names = name_text
server_names = st.one_of(st.just(""), name_text)


def container_name(user, server):
    return names.container_name("jupyter-{user_server}", user, server)


@FAST
@given(user=user_names, server=server_names)
@example(user="a\n", server="")  # a plain name but for the newline `$` lets through
@example(user="alice", server="lab\n")
def test_every_container_name_is_valid_for_zun_and_dns(user, server):
    name = container_name(user, server)
    assert ZUN_NAME.fullmatch(name), name
    assert len(name) <= names.MAX_NAME_LENGTH


@FEWER
@given(pairs=st.lists(st.tuples(user_names, server_names), min_size=2, max_size=8,
                      unique=True))
def test_no_two_user_server_pairs_share_a_container_name(pairs):
    made = {container_name(u, s): (u, s) for u, s in pairs}
    assert len(made) == len(pairs), made


@FEWER
@given(pairs=st.lists(st.tuples(user_names, server_names), min_size=2, max_size=8,
                      unique=True))
def test_home_volume_names_are_valid_and_unique_per_owner(pairs):
    shared, per_server = {}, {}
    for user, server in pairs:
        for template, seen, owner in (
            ("home-{username}", shared, user),
            ("home-{user_server}", per_server, (user, server)),
        ):
            name = names.volume_name(template, user, server, hub_id="hub")
            assert 0 < len(name) <= CINDER_MAX
            # one name per owner: the user (shared home) or the user's server
            assert seen.setdefault(name, owner) == owner, (name, owner, seen[name])


# -- user_options -------------------------------------------------------------------

OFFERED = {"flavor": sorted(catalog.DEFAULT_FLAVORS), "image": ["base", "scipy"]}
IMAGES = {
    "base": {"display_name": "Base"},
    "scipy": {"display_name": "SciPy"},
}

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                      st.text(max_size=300))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)
option_value = st.one_of(
    st.sampled_from(OFFERED["flavor"] + OFFERED["image"]), json_value,
    st.text(min_size=250, max_size=260),
)
user_options = st.one_of(
    st.dictionaries(st.sampled_from(["flavor", "image", "profile"]) | st.text(max_size=8),
                    option_value, max_size=4),
    json_value,
)


def run(coro):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def outcome(options):
    spawner = make_spawner(config={"images": IMAGES})
    try:
        run(spawner.apply_flavor(options))
    except SpawnException as e:
        return e
    return spawner


@FAST
@given(options=user_options)
def test_any_user_options_are_accepted_or_a_400_never_a_500(options):
    result = outcome(options)
    if isinstance(result, SpawnException):
        assert result.status_code in (400, 403), (result.status_code, result.message)
        assert result.message and "Traceback" not in result.message
    else:
        # accepted: what was chosen is one of the offered names
        chosen = result.user_options
        assert chosen.get("flavor") in OFFERED["flavor"]
        assert chosen.get("image") in OFFERED["image"]


@FAST
@given(form=st.dictionaries(st.text(max_size=8) | st.sampled_from(["flavor", "image"]),
                            st.lists(st.text(max_size=20) | st.sampled_from(
                                OFFERED["flavor"] + OFFERED["image"]), max_size=3),
                            max_size=4))
def test_any_options_form_post_is_accepted_or_a_400(form):
    try:
        options = options_form.options_from_form(form)
    except SpawnException as e:
        assert e.status_code == 400
        return
    result = outcome(options)
    if isinstance(result, SpawnException):
        assert result.status_code in (400, 403), (result.status_code, result.message)
