import itertools

import pytest

from magnum_spawner.common import names


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
    assert names.ZUN_NAME_RE.fullmatch(name)
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


def test_two_greek_users_whose_short_hashes_collided_get_different_names():
    # Under the old 32-bit hash both gave "jupyter-x---2d5eead3", and the second
    # user was refused as "a container this hub did not make".
    a = names.container_name("jupyter-{user_server}", "γωλβ")
    b = names.container_name("jupyter-{user_server}", "εγωμ")
    assert a != b
    assert names.ZUN_NAME_RE.fullmatch(a) and names.ZUN_NAME_RE.fullmatch(b)


def test_the_hash_carries_at_least_64_bits():
    escaped = names.slug("Ünïcødé")
    digest = escaped.rsplit("---", 1)[1]
    # base32: 5 bits per character
    assert len(digest) * 5 >= 64
    assert set(digest) <= set("abcdefghijklmnopqrstuvwxyz234567")


@pytest.mark.parametrize("text", ["alice\n", "alice\r\n", "\nalice"])
def test_a_trailing_or_leading_newline_is_never_plain(text):
    escaped = names.slug(text)
    assert escaped != text and "\n" not in escaped
    assert escaped != names.slug("alice")
    name = names.container_name("jupyter-{user_server}", "alice", text)
    assert "\n" not in name and names.ZUN_NAME_RE.fullmatch(name)


def test_a_name_with_a_trailing_newline_is_refused():
    with pytest.raises(ValueError, match="does not match"):
        names.validate_name("jupyter-alice\n")


def test_the_longest_names_still_fit_63_characters():
    name = names.container_name("jupyter-{user_server}", "ü" * 100, "é" * 100)
    assert len(name) <= names.MAX_NAME_LENGTH
    assert names.ZUN_NAME_RE.fullmatch(name)
