import itertools

import pytest

from magnum_spawner import names


def test_plain_names_stay_readable():
    assert names.container_name("jupyter-{user_server}", "alice") == "jupyter-alice"
    assert names.container_name("jupyter-{user_server}", "bob.smith", "gpu-1") == (
        "jupyter-bob.smith--gpu-1"
    )


@pytest.mark.parametrize(
    "user",
    ["Alice", "alice@example.org", "ünïcødé", "a b", "-lead", "trail-", "a--b", "x" * 80, "日本"],
)
def test_escaped_names_are_valid_zun_names(user):
    name = names.container_name("jupyter-{user_server}", user, "Server Ünï" * 5)
    assert names.ZUN_NAME_RE.match(name)
    assert len(name) <= names.MAX_NAME_LENGTH
    # anything that was changed carries a hash
    assert "---" in name


def test_case_is_never_folded_into_a_collision():
    a = names.container_name("jupyter-{user_server}", "Alice")
    b = names.container_name("jupyter-{user_server}", "alice")
    assert a != b and b == "jupyter-alice"


def test_no_two_pairs_share_a_name():
    users = ["a", "a-b", "a--b", "a-", "b", "A", "a.b", "a_b", "a@b", "a b", "x" * 40, "x" * 41]
    servers = ["", "b", "-b", "b-", "c", "B", "a-b", "y" * 30, "y" * 31]
    seen = {}
    for user, server in itertools.product(users, servers):
        name = names.container_name("jupyter-{user_server}", user, server)
        assert name not in seen, f"{(user, server)} and {seen[name]} both give {name}"
        seen[name] = (user, server)


def test_user_and_server_split_cannot_collide():
    # "a" with server "b" versus user "a--b" with no server: the joiner is "--",
    # which a plain slug never contains, so the second one is escaped.
    assert names.container_name("j-{user_server}", "a", "b") == "j-a--b"
    assert names.container_name("j-{user_server}", "a--b") != "j-a--b"


def test_bad_template_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="does not match"):
        names.container_name("-{user_server}", "alice")
    with pytest.raises(ValueError, match="characters long"):
        names.container_name("{user_server}" + "x" * 70, "alice")


def test_template_fields():
    assert names.container_name("{hub_id}-{username}-{servername}", "al", "s1", hub_id="h") == (
        "h-al-s1"
    )
