"""The pure layer, tested as such: request bodies, Zun's statuses, the user's choice.

No cloud and no spawner here: what these functions return is what Zun, Cinder
and the spawn page get.  The create body is compared with a request Zun
accepted (fixtures/recorded-local).
"""

import pytest
from jupyterhub.spawner import SpawnException

from magnum_spawner.common.catalog import DEFAULT_FLAVORS, parse_flavors, parse_images
from magnum_spawner.common.choice import Choice, Offer, choose
from magnum_spawner.zun import objects

from .recorded import HUB_LABELS, POLL_RESULTS, load, response, status

GIB = 1024 ** 3
BASE = "quay.io/jupyter/base-notebook"
SCIPY = "quay.io/jupyter/scipy-notebook"


def offer(flavors=None, images=(), allowed=None, default_flavor="standard", default_image=None):
    table = parse_flavors(DEFAULT_FLAVORS if flavors is None else flavors)
    mine = {k: v for k, v in table.items() if allowed is None or k in allowed}
    images = parse_images(list(images))
    return Offer(
        flavors=mine,
        default_flavor=default_flavor if default_flavor in mine else next(iter(mine), None),
        images=images,
        default_image=default_image or next(iter(images), None),
        all_flavors=frozenset(table),
        all_images=frozenset(images),
    )


def refused(the_offer, options, **kw):
    with pytest.raises(SpawnException) as info:
        choose(the_offer, options, **kw)
    return info.value


# -- the create body ---------------------------------------------------------------


def test_the_create_body_is_the_one_zun_accepted():
    sent = load("zun-container-create-run")["request"]["body"]
    choice = Choice(flavor=None, image=sent["image"], mem_limit=2 * GIB, cpu_limit=1.0)
    body = objects.build_container(
        name=sent["name"], choice=choice, command=sent["command"],
        environment=sent["environment"], labels=sent["labels"],
    )
    # the choice adds the label that records the image
    assert body["labels"].pop("hub.jupyter.org/image") == sent["image"]
    assert body == sent


def test_the_flavor_sets_sizes_pinning_disk_and_the_labels_that_record_it():
    choice = choose(offer({"pinned": {"cpu": 2, "memory": 4096, "cpu_policy": "dedicated",
                                      "disk": 20}}, images=[BASE, SCIPY]),
                    {"flavor": "pinned", "image": SCIPY})
    body = objects.build_container(
        name="jupyter-alice", choice=choice, command=["jupyterhub-singleuser"],
        environment={"PORT": 8888}, labels=HUB_LABELS,
    )
    assert (body["memory"], body["cpu"], body["cpu_policy"], body["disk"]) == (
        "4096", 2.0, "dedicated", 20)
    assert body["image"] == SCIPY
    assert body["labels"] == {**HUB_LABELS, "hub.jupyter.org/flavor": "pinned",
                              "hub.jupyter.org/image": SCIPY}
    assert body["environment"] == {"PORT": "8888"}  # Zun wants strings


def test_unset_options_are_not_sent_and_memory_rounds_up_to_whole_mib():
    choice = Choice(flavor=None, image=BASE, mem_limit=GIB + 1, cpu_limit=None)
    body = objects.build_container(name="n", choice=choice, command=[], environment={},
                                   labels={})
    assert body["memory"] == "1025"
    for key in ("cpu", "cpu_policy", "disk", "nets", "security_groups", "exposed_ports",
                "availability_zone", "hints", "mounts", "workdir"):
        assert key not in body


def test_network_groups_mounts_and_restart_policy_take_zuns_shapes():
    choice = Choice(flavor=None, image=BASE, mem_limit=None, cpu_limit=None)
    body = objects.build_container(
        name="n", choice=choice, command=[], environment={}, labels={},
        network="net-1", security_groups=("jupyter",), restart="on-failure:3",
        mounts=objects.mounts_for("vol-1", "/home/jovyan"), workdir="/home/jovyan",
    )
    assert body["nets"] == [{"network": "net-1"}]
    assert body["security_groups"] == ["jupyter"]
    assert body["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": "3"}
    assert body["mounts"] == [{"source": "vol-1", "destination": "/home/jovyan"}]


@pytest.mark.parametrize("text", ["sometimes", "always:2", "on-failure:x"])
def test_a_restart_policy_zun_would_refuse_is_refused_here(text):
    with pytest.raises(ValueError, match="restart_policy"):
        objects.restart_policy(text)


def test_the_volume_create_sends_only_what_is_set():
    assert objects.volume_request(name="home-alice", size=2, metadata={"k": "v"}) == {
        "name": "home-alice", "size": 2, "metadata": {"k": "v"}}
    full = objects.volume_request(name="h", size=1, metadata={}, description="d",
                                  volume_type="ssd", availability_zone="nova")
    assert (full["description"], full["volume_type"], full["availability_zone"]) == (
        "d", "ssd", "nova")


# -- what Zun says, as poll() and the spawn page read it -----------------------------


def container(value, detail=None, reason=None):
    body = response("zun-container-show-running")["body"]
    status(value, reason=reason, detail=detail)(body)
    return body


@pytest.mark.parametrize("value, detail, code", POLL_RESULTS)
def test_zun_statuses_as_poll_results(value, detail, code):
    assert objects.exit_status(container(value, detail)) == code


def test_the_address_is_on_the_configured_network_and_ipv4_first():
    c = container("Running")
    c["addresses"] = {
        "net-a": [{"addr": "fd00::5", "version": 6}, {"addr": "10.0.0.5", "version": 4}],
        "net-b": [{"addr": "10.1.0.7", "version": 4, "port": "port-b"}],
    }
    assert objects.container_address(c) == "10.0.0.5"
    assert objects.container_address(c, "net-b") == "10.1.0.7"
    assert objects.container_address({"addresses": {}}) is None


def test_a_failure_is_described_with_zuns_own_words():
    text = objects.describe_failure(container("Error", detail="OOMKilled",
                                              reason="out of memory"))
    assert text.endswith("is Error (OOMKilled): out of memory")


def test_a_hub_recognises_its_own_containers_and_volumes_only():
    assert objects.is_ours({"labels": dict(HUB_LABELS, extra="x")}, HUB_LABELS)
    assert not objects.is_ours({"labels": dict(HUB_LABELS, **{"hub.jupyter.org/hub": "b"})},
                               HUB_LABELS)
    ours = objects.identity_metadata("hub-1", "alice", "", per_server_volume=False)
    assert objects.volume_made_here({"metadata": ours}, "hub-1")
    assert not objects.volume_made_here({"metadata": ours}, "hub-2")
    made_by_hand = {k: v for k, v in ours.items() if not k.endswith("managed-by")}
    assert not objects.volume_made_here({"metadata": made_by_hand}, "hub-1")
    assert objects.conflicts({"metadata": dict(ours, **{"hub.jupyter.org/user": "bob"})},
                             ours) == {"hub.jupyter.org/user": "bob"}


# -- the user's choice ------------------------------------------------------------------


def test_no_choice_gives_the_defaults_and_writes_them_back():
    choice = choose(offer(images=[BASE, SCIPY]), {})
    assert (choice.flavor_name, choice.image) == ("standard", BASE)
    assert (choice.mem_limit, choice.cpu_limit) == (2048 * 1024 * 1024, 1.0)
    assert choice.user_options == {"flavor": "standard", "profile": "standard", "image": BASE}


def test_profile_is_another_name_for_flavor():
    assert choose(offer(), {"profile": "large"}).flavor_name == "large"
    assert refused(offer(), {"profile": "large", "flavor": "small"}).status_code == 400


def test_without_flavors_or_images_the_configured_values_run():
    choice = choose(offer(flavors={}), {}, image=BASE, mem_limit=3 * GIB, cpu_limit=1.5)
    assert (choice.flavor, choice.image, choice.mem_limit, choice.cpu_limit) == (
        None, BASE, 3 * GIB, 1.5)
    assert choice.labels == {"hub.jupyter.org/image": BASE}
    assert choice.user_options == {}


@pytest.mark.parametrize("options, words", [
    ({"flavor": "huge"}, "There is no flavor named 'huge'; choose one of: small, standard, large"),
    ({"flavor": 3}, "must be the name of a flavor (a string), not a number (3)"),
    ({"flavor": "x" * 300}, "flavor names have at most 255"),
    ({"image": BASE}, "This hub offers no choice of image"),
    ({"colour": "red"}, "Unknown option 'colour'"),
])
def test_bad_choices_are_a_400_naming_the_problem(options, words):
    error = refused(offer(), options)
    assert error.status_code == 400 and words in error.message


def test_a_flavor_not_allowed_to_this_user_is_named_as_such():
    mine = offer(allowed=["small"])
    assert choose(mine, {}).flavor_name == "small"  # the default is not theirs
    error = refused(mine, {"flavor": "large"})
    assert "The flavor 'large' is not available to you; choose one of: small" in error.message
    nothing = offer(allowed=[])
    assert refused(nothing, {}).status_code == 403


def test_other_parts_may_accept_more_options_which_are_kept():
    choice = choose(offer(), {"gpu": "1"}, accepted={"flavor", "image", "profile", "gpu"})
    assert choice.user_options == {"gpu": "1", "flavor": "standard", "profile": "standard"}
