"""Flavors, images and the options form (issue 5).

Starts run against the recorded Zun answers; the create body Zun receives is
what the tests assert.  Bad choices must never reach Zun at all.
"""

import copy
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
import requests
from jupyterhub.spawner import SpawnException
from traitlets import TraitError

from magnum_spawner.common.catalog import DEFAULT_FLAVORS
from magnum_spawner.common.options_form import options_from_form, render_options_form

from .helpers import make_spawner, without_injected_files
from .recorded import HUB_LABELS, KEYSTONE, creates

BASE = "quay.io/jupyter/base-notebook"
SCIPY = "quay.io/jupyter/scipy-notebook"
IMAGES = {
    BASE: {"display_name": "Base", "description": "Python and JupyterLab."},
    SCIPY: {"display_name": "SciPy", "description": "NumPy, SciPy, pandas, matplotlib."},
}


def zun_requests(cloud):
    return cloud.requests(pattern=r"127\.0\.0\.1:9517")


def create_body(cloud):
    (sent,) = cloud.requests("POST", r"/v1/containers")
    body = without_injected_files(sent.json())
    body.pop("environment")
    body.pop("command")
    return body


def staff_user():
    return [SimpleNamespace(name="staff")]


# -- what Zun receives per flavor and image -------------------------------------


async def test_no_choice_gives_the_hubs_previous_size_and_records_it(cloud):
    creates(cloud)
    spawner = make_spawner()
    await spawner.start()
    assert create_body(cloud) == {
        "name": "jupyter-alice",
        "image": BASE,
        "labels": {
            **HUB_LABELS,
            "hub.jupyter.org/flavor": "standard",
            "hub.jupyter.org/image": BASE,
        },
        "memory": "2048",
        "cpu": 1.0,
        "restart_policy": {"Name": "no"},
    }
    assert spawner.user_options == {"flavor": "standard", "profile": "standard"}
    state = spawner.get_state()
    assert state["flavor"] == "standard" and state["image"] == BASE


@pytest.mark.parametrize("flavor, memory, cpu", [
    ("small", "1024", 0.5),
    ("standard", "2048", 1.0),
    ("large", "4096", 2.0),
])
async def test_each_default_flavor_sets_zuns_cpu_and_memory(cloud, flavor, memory, cpu):
    creates(cloud)
    spawner = make_spawner()
    spawner.user_options = {"flavor": flavor}
    await spawner.start()
    body = create_body(cloud)
    assert (body["memory"], body["cpu"]) == (memory, cpu)
    assert body["labels"]["hub.jupyter.org/flavor"] == flavor
    assert "cpu_policy" not in body and "disk" not in body
    assert spawner.mem_limit == int(memory) * 1024 * 1024
    assert spawner.get_state()["flavor"] == flavor


async def test_dedicated_flavor_with_disk_sends_cpu_policy_and_disk(cloud):
    creates(cloud)
    spawner = make_spawner(config={"flavors": {
        **copy.deepcopy(DEFAULT_FLAVORS),
        "pinned": {"cpu": 2, "memory": 3072, "cpu_policy": "dedicated", "disk": 10},
    }})
    spawner.user_options = {"flavor": "pinned"}
    await spawner.start()
    assert create_body(cloud) == {
        "name": "jupyter-alice",
        "image": BASE,
        "labels": {
            **HUB_LABELS,
            "hub.jupyter.org/flavor": "pinned",
            "hub.jupyter.org/image": BASE,
        },
        "memory": "3072",
        "cpu": 2.0,
        "cpu_policy": "dedicated",
        "disk": 10,
        "restart_policy": {"Name": "no"},
    }


async def test_shared_policy_is_sent_when_the_flavor_says_so(cloud):
    creates(cloud)
    spawner = make_spawner(config={"flavors": {
        "tiny": {"cpu": 0.25, "memory": 512, "cpu_policy": "shared"},
    }})
    await spawner.start()
    body = create_body(cloud)
    assert (body["cpu"], body["memory"], body["cpu_policy"]) == (0.25, "512", "shared")


async def test_chosen_image_is_used_and_recorded(cloud):
    creates(cloud)
    spawner = make_spawner(config={"images": copy.deepcopy(IMAGES)})
    spawner.user_options = {"flavor": "small", "image": SCIPY}
    await spawner.start()
    body = create_body(cloud)
    assert body["image"] == SCIPY
    assert body["labels"]["hub.jupyter.org/image"] == SCIPY
    assert body["labels"]["hub.jupyter.org/flavor"] == "small"
    assert spawner.user_options == {"flavor": "small", "profile": "small", "image": SCIPY}
    assert spawner.get_state()["image"] == SCIPY


async def test_default_image_is_used_when_none_is_chosen(cloud):
    creates(cloud)
    spawner = make_spawner(config={"images": copy.deepcopy(IMAGES), "default_image": SCIPY})
    await spawner.start()
    assert create_body(cloud)["image"] == SCIPY
    assert spawner.user_options == {"flavor": "standard", "profile": "standard", "image": SCIPY}


async def test_a_later_start_without_a_choice_gets_the_default_image_again():
    spawner = make_spawner(config={"images": [BASE, SCIPY], "image": BASE})
    spawner.user_options = {"image": SCIPY}
    assert (await spawner.apply_flavor()).image == SCIPY
    spawner.clear_state()
    spawner.user_options = {}
    assert (await spawner.apply_flavor()).image == BASE
    assert parse(await spawner.get_options_form()).checked("image") == [BASE]


async def test_jupyterhubs_apply_user_options_step_refuses_bad_options_early(cloud):
    # JupyterHub runs this hook before pre_spawn_hook and start()
    spawner = make_spawner()
    with pytest.raises(SpawnException) as info:
        await spawner._run_apply_user_options({"flavor": "huge"})
    assert info.value.status_code == 400
    spawner.user_options = {"flavor": "large"}
    await spawner._run_apply_user_options(spawner.user_options)
    assert spawner.cpu_limit == 2.0
    assert zun_requests(cloud) == []


async def test_empty_flavors_keep_the_configured_limits(cloud):
    creates(cloud)
    spawner = make_spawner(config={"flavors": {}, "mem_limit": "3G", "cpu_limit": 1.5})
    await spawner.start()
    body = create_body(cloud)
    assert (body["memory"], body["cpu"]) == ("3072", 1.5)
    assert "hub.jupyter.org/flavor" not in body["labels"]
    assert body["labels"]["hub.jupyter.org/image"] == BASE


async def test_the_form_round_trip_starts_the_chosen_flavor(cloud):
    creates(cloud)
    spawner = make_spawner(config={"images": copy.deepcopy(IMAGES)})
    spawner.user_options = spawner.run_options_from_form(
        {"flavor": ["large"], "image": [SCIPY]}
    )
    await spawner.start()
    body = create_body(cloud)
    assert (body["memory"], body["cpu"], body["image"]) == ("4096", 2.0, SCIPY)


async def test_profile_is_another_name_for_flavor_as_on_the_admin_page(cloud):
    # JupyterHub's admin page shows user_options["profile"] in its Profile column
    spawner = make_spawner()
    spawner.user_options = {"profile": "large"}
    await spawner.apply_flavor()
    assert spawner.cpu_limit == 2.0
    assert spawner.user_options == {"flavor": "large", "profile": "large"}
    # what the API shows may be sent back as it is
    await spawner.apply_flavor(dict(spawner.user_options))
    assert spawner.cpu_limit == 2.0

    spawner.user_options = {"profile": "large", "flavor": "small"}
    with pytest.raises(SpawnException) as info:
        await spawner.apply_flavor()
    assert info.value.status_code == 400
    assert "The profile and flavor options differ" in info.value.message
    spawner.user_options = {"profile": ["large"]}
    with pytest.raises(SpawnException, match="The profile option must be the name of a flavor"):
        await spawner.apply_flavor()
    assert zun_requests(cloud) == []


def test_options_from_form_unpacks_single_fields_and_drops_xsrf():
    assert options_from_form({"flavor": ["small"], "_xsrf": ["t"]}) == {"flavor": "small"}
    # two values stay a list, and are refused later with a message
    assert options_from_form({"flavor": ["small", "large"]}) == {"flavor": ["small", "large"]}
    assert make_spawner().options_from_form is options_from_form


# -- hostile or wrong user_options: 400, a message, and no Zun request -----------


@pytest.mark.parametrize("options, message", [
    ({"flavor": "huge"}, "There is no flavor named 'huge'; choose one of: small, standard, large"),
    ({"flavor": "x" * 100_000}, "The flavor option is 100000 characters long"),
    ({"flavor": "ｌａｒｇｅ"}, "There is no flavor named 'ｌａｒｇｅ'"),
    ({"flavor": "small\x00; rm -rf /"}, "There is no flavor named 'small\\x00; rm -rf /'"),
    ({"flavor": ""}, "There is no flavor named ''"),
    ({"flavor": {"cpu": 16, "memory": 8192}}, "must be the name of a flavor (a string), not a JSON object"),
    ({"flavor": ["large"]}, "not a list"),
    ({"flavor": -1}, "not a number (-1)"),
    ({"flavor": 2048}, "not a number (2048)"),
    ({"flavor": True}, "not true/false"),
    ({"flavor": "2"}, "There is no flavor named '2'"),
    ({"flavor": "-4096"}, "There is no flavor named '-4096'"),
    ({"memory": "99999"}, "Unknown option 'memory'; this hub accepts: flavor, image, profile"),
    ({"flavor": "large", "cpu": 16}, "Unknown option 'cpu'"),
    ({"ﬂavor": "small"}, "Unknown option 'ﬂavor'"),
    ({"k" * 5000: 1}, "Unknown option 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk'..."),
    ({"image": "evil/miner:latest"}, "This hub offers no choice of image"),
])
async def test_bad_user_options_are_a_400_naming_the_problem(cloud, options, message):
    spawner = make_spawner()
    spawner.user_options = options
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.status_code == 400
    assert message in info.value.message
    assert len(info.value.message) < 400
    assert zun_requests(cloud) == []


@pytest.mark.parametrize("image, message", [
    ("evil/miner:latest", "There is no image named 'evil/miner:latest'; choose one of: "
     f"{BASE}, {SCIPY}"),
    ({"name": SCIPY}, "The image option must be the name of a image (a string), not a JSON object"),
    ([SCIPY, BASE], "not a list"),
    (3.14, "not a number (3.14)"),
])
async def test_an_image_outside_the_list_is_refused(cloud, image, message):
    spawner = make_spawner(config={"images": copy.deepcopy(IMAGES)})
    spawner.user_options = {"image": image}
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert (info.value.status_code, info.value.reason) == (400, "user-options")
    assert message in info.value.message
    assert zun_requests(cloud) == []


async def test_two_form_values_for_one_field_are_refused(cloud):
    spawner = make_spawner()
    spawner.user_options = spawner.run_options_from_form({"flavor": ["small", "large"]})
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.status_code == 400
    assert "not a list" in info.value.message
    assert zun_requests(cloud) == []


async def test_a_flavor_the_user_may_not_use_is_refused(cloud):
    spawner = make_spawner(config={"allowed_flavors": ["small", "standard"]})
    spawner.user_options = {"flavor": "large"}
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.status_code == 400
    assert info.value.message == (
        "The flavor 'large' is not available to you; choose one of: small, standard"
    )
    assert zun_requests(cloud) == []


async def test_allowed_flavors_may_be_a_coroutine_per_user(cloud):
    async def allowed(spawner):
        return ["small"] if spawner.user.name == "alice" else ["small", "large"]

    creates(cloud)
    spawner = make_spawner(config={"allowed_flavors": allowed})
    await spawner.start()
    # "standard" is not alice's, so her default is her first allowed flavor
    assert create_body(cloud)["memory"] == "1024"
    assert spawner.user_options == {"flavor": "small", "profile": "small"}

    bob = make_spawner("bob", config={"allowed_flavors": allowed})
    bob.user_options = {"flavor": "large"}
    await bob.apply_flavor()
    assert bob.cpu_limit == 2.0


async def test_allowed_images_may_be_a_callable(cloud):
    spawner = make_spawner(config={
        "images": copy.deepcopy(IMAGES),
        "allowed_images": lambda spawner: [BASE],
    })
    spawner.user_options = {"image": SCIPY}
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.status_code == 400
    assert f"The image '{SCIPY}' is not available to you; choose one of: {BASE}" in (
        info.value.message
    )
    assert zun_requests(cloud) == []


async def test_a_user_allowed_no_flavor_is_told_so_without_a_container(cloud):
    spawner = make_spawner(config={"allowed_flavors": []})
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.status_code == 403
    assert "No flavor is available to you" in info.value.message
    assert zun_requests(cloud) == []


# -- group overrides -------------------------------------------------------------

STAFF_GETS_LARGE = {
    "staff-large": {
        "groups": ["staff"],
        "spawner_override": {"allowed_flavors": ["small", "standard", "large"]},
    },
}


async def test_group_override_gives_staff_the_large_flavor(cloud):
    creates(cloud)
    config = {"allowed_flavors": ["small", "standard"], "group_overrides": STAFF_GETS_LARGE}
    spawner = make_spawner(config=config)
    spawner.user.groups = staff_user()
    spawner.user_options = {"flavor": "large"}
    await spawner.apply_group_overrides()  # as JupyterHub does before start()
    await spawner.start()
    assert create_body(cloud)["memory"] == "4096"

    other = make_spawner("bob", config=config)
    await other.apply_group_overrides()
    other.user_options = {"flavor": "large"}
    with pytest.raises(SpawnException) as info:
        await other.apply_flavor()
    assert "not available to you" in info.value.message


async def test_group_override_may_add_a_flavor_without_leaking_to_others(cloud):
    creates(cloud)
    config = {"group_overrides": {"staff-xl": {
        "groups": ["staff"],
        "spawner_override": {"flavors": {"xlarge": {"cpu": 4, "memory": 8192}}},
    }}}
    spawner = make_spawner(config=config)
    spawner.user.groups = staff_user()
    await spawner.apply_group_overrides()
    spawner.user_options = {"flavor": "xlarge"}
    await spawner.start()
    body = create_body(cloud)
    assert (body["memory"], body["cpu"]) == ("8192", 4.0)

    # the override merged into this spawner's dict only
    other = make_spawner("bob", config=config)
    await other.apply_group_overrides()
    assert "xlarge" not in other.flavors
    assert "xlarge" not in DEFAULT_FLAVORS


async def test_a_group_override_outside_zuns_range_names_the_flavor(cloud):
    config = {"group_overrides": {"staff-huge": {
        "groups": ["staff"],
        "spawner_override": {"flavors": {"huge": {"cpu": 4, "memory": 65536}}},
    }}}
    spawner = make_spawner(config=config)
    spawner.user.groups = staff_user()
    await spawner.apply_group_overrides()
    spawner.user_options = {"flavor": "small"}
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.status_code == 500
    assert "flavor 'huge' memory is 65536 MiB; Zun accepts 4-8192 MiB" in info.value.message
    assert zun_requests(cloud) == []


# -- the options form ------------------------------------------------------------


class FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.inputs = []
        self.tags = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "input":
            self.inputs.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)

    def radios(self, name):
        return [i["value"] for i in self.inputs if i.get("type") == "radio" and i["name"] == name]

    def checked(self, name):
        return [
            i["value"] for i in self.inputs
            if i.get("type") == "radio" and i["name"] == name and "checked" in i
        ]


def parse(html):
    parser = FormParser()
    parser.feed(html)
    return parser


async def test_form_lists_the_flavors_with_the_default_checked():
    spawner = make_spawner()
    form = parse(await spawner.get_options_form())
    assert form.radios("flavor") == ["small", "standard", "large"]
    assert form.checked("flavor") == ["standard"]
    assert form.radios("image") == []  # no image choice configured
    text = " ".join(form.text)
    assert "1 vCPU, 2048 MiB memory" in text and "2 vCPUs, 4096 MiB memory" in text


async def test_form_offers_images_with_the_default_checked():
    spawner = make_spawner(config={"images": copy.deepcopy(IMAGES), "default_image": SCIPY})
    form = parse(await spawner.get_options_form())
    assert form.radios("image") == [BASE, SCIPY]
    assert form.checked("image") == [SCIPY]
    assert "NumPy, SciPy, pandas, matplotlib." in " ".join(form.text)


async def test_form_hides_flavors_the_user_may_not_use():
    spawner = make_spawner(config={"allowed_flavors": ["small", "standard"]})
    form = parse(await spawner.get_options_form())
    assert form.radios("flavor") == ["small", "standard"]
    assert form.checked("flavor") == ["standard"]


async def test_form_shows_staff_their_group_flavor():
    config = {"allowed_flavors": ["small", "standard"], "group_overrides": STAFF_GETS_LARGE}
    staff = make_spawner(config=config)
    staff.user.groups = staff_user()
    assert parse(await staff.get_options_form()).radios("flavor") == [
        "small", "standard", "large",
    ]
    bob = make_spawner("bob", config=config)
    assert parse(await bob.get_options_form()).radios("flavor") == ["small", "standard"]


async def test_form_escapes_names_and_descriptions():
    spawner = make_spawner(config={"flavors": {
        "a": {"cpu": 1, "memory": 1024, "display_name": "<b>Bold</b>",
              "description": "<script>alert('x')</script> & more"},
        'b"><img src=x>': {"cpu": 1, "memory": 2048},
    }})
    html = await spawner.get_options_form()
    form = parse(html)
    assert "script" not in form.tags and "img" not in form.tags and "b" not in form.tags
    assert "&lt;script&gt;" in html
    assert form.radios("flavor") == ["a", 'b"><img src=x>']
    text = "".join(form.text)
    assert "<script>alert('x')</script> & more" in text
    assert "<b>Bold</b>" in text


async def test_no_form_when_there_is_nothing_to_choose():
    spawner = make_spawner(config={"flavors": {"only": {"cpu": 1, "memory": 2048}}})
    assert await spawner.get_options_form() == ""
    spawner = make_spawner(config={"allowed_flavors": ["standard"]})
    assert await spawner.get_options_form() == ""


async def test_an_operators_own_options_form_wins():
    spawner = make_spawner(config={"options_form": "<input name='flavor'>"})
    assert await spawner.get_options_form() == "<input name='flavor'>"
    assert make_spawner().options_form is render_options_form


# -- configuration checked when the hub starts -----------------------------------


@pytest.mark.parametrize("flavor, message", [
    ({"cpu": 4, "memory": 16384}, "flavor 'bad' memory is 16384 MiB; Zun accepts 4-8192 MiB"),
    ({"cpu": 4, "memory": 2}, "flavor 'bad' memory is 2 MiB; Zun accepts 4-8192 MiB"),
    ({"cpu": 32, "memory": 1024}, "flavor 'bad' cpu is 32 vCPUs; Zun accepts 0.1-16 vCPUs"),
    ({"cpu": 0.05, "memory": 1024}, "flavor 'bad' cpu is 0.05 vCPUs"),
    ({"cpu": "2", "memory": 1024}, "flavor 'bad': cpu must be a number of vCPUs, not '2'"),
    ({"cpu": 1, "memory": "2G"}, "flavor 'bad': memory must be a whole number of MiB"),
    ({"cpu": 1}, "flavor 'bad': memory must be a whole number of MiB, not None"),
    ({"cpu": 1, "memory": 1024, "ram": 1024}, "flavor 'bad' has unknown key(s) ram"),
    ({"cpu": 1, "memory": 1024, "cpu_policy": "exclusive"},
     "flavor 'bad': cpu_policy must be 'shared' or 'dedicated', not 'exclusive'"),
    ({"cpu": 1.5, "memory": 1024, "cpu_policy": "dedicated"},
     "flavor 'bad': cpu_policy 'dedicated' pins whole cores"),
    ({"cpu": 1, "memory": 1024, "disk": -5}, "flavor 'bad': disk must be a whole number of GiB"),
    ("2 CPUs please", "flavor 'bad' must be a dict with cpu and memory"),
])
def test_a_flavor_zun_would_refuse_stops_the_hub_naming_it(flavor, message):
    with pytest.raises(TraitError) as info:
        make_spawner(config={"flavors": {"fine": {"cpu": 1, "memory": 1024}, "bad": flavor}})
    assert "ZunSpawner.flavors" in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize("config, message", [
    ({"default_flavor": "medium"}, "ZunSpawner.default_flavor: 'medium' is not one of the flavors"),
    ({"flavors": {"a": {"cpu": 1, "memory": 512}}, "default_flavor": "standard"},
     "'standard' is not one of the flavors"),
    ({"images": {BASE: "Base"}, "default_image": SCIPY},
     f"ZunSpawner.default_image: '{SCIPY}' is not one of the images"),
    ({"images": {BASE: {"title": "Base"}}}, f"image '{BASE}' has unknown key(s) title"),
    ({"images": {"": "Nothing"}}, "image names must be non-empty strings"),
])
def test_defaults_must_be_on_their_lists(config, message):
    with pytest.raises(TraitError) as info:
        make_spawner(config=config)
    assert message in str(info.value)


def test_valid_configuration_is_accepted_in_any_order():
    spawner = make_spawner(config={
        "default_flavor": "big",
        "flavors": {"big": {"cpu": 2, "memory": 4096}, "tiny": {"cpu": 0.1, "memory": 4}},
        "default_image": SCIPY,
        "images": [BASE, SCIPY],
    })
    assert spawner.default_flavor == "big" and spawner.default_image == SCIPY


def test_changing_a_list_later_keeps_its_default_on_it():
    spawner = make_spawner(config={"images": copy.deepcopy(IMAGES), "default_image": SCIPY})
    with pytest.raises(TraitError, match=f"default_image: '{SCIPY}' is not one of the images"):
        spawner.images = {BASE: "Base"}
    spawner = make_spawner(config={"default_flavor": "large"})
    with pytest.raises(TraitError, match="default_flavor: 'large' is not one of the flavors"):
        spawner.flavors = {"small": {"cpu": 0.5, "memory": 1024}}


# -- state -----------------------------------------------------------------------


async def test_state_round_trip_keeps_flavor_and_image():
    spawner = make_spawner(config={"images": copy.deepcopy(IMAGES)})
    spawner.user_options = {"flavor": "large", "image": SCIPY}
    await spawner.apply_flavor()
    state = spawner.get_state()
    assert (state["flavor"], state["image"]) == ("large", SCIPY)

    restored = make_spawner()
    restored.load_state(state)
    assert restored.get_state()["flavor"] == "large"
    assert (restored.flavor_name, restored.image_name) == ("large", SCIPY)
    restored.clear_state()
    assert "flavor" not in restored.get_state() and "image" not in restored.get_state()


# -- flavors read from Nova ------------------------------------------------------

NOVA = "http://127.0.0.1:8774/v2.1"

# openstack/nova doc/api_samples/versions/v21-version-get-resp.json (e5b47543);
# values changed: the self link points at the in-test endpoint.
NOVA_VERSION = {
    "version": {
        "id": "v2.1",
        "links": [
            {"href": f"{NOVA}/", "rel": "self"},
            {"href": "http://docs.openstack.org/", "rel": "describedby", "type": "text/html"},
        ],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.compute+json;version=2.1",
        }],
        "status": "CURRENT",
        "version": "2.79",
        "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
    }
}


def _nova_flavor(id_, name, ram, vcpus, disk, extra_specs=None):
    # one entry of openstack/nova doc/api_samples/flavors/v2.61/flavors-detail-resp.json
    return {
        "OS-FLV-DISABLED:disabled": False,
        "disk": disk,
        "OS-FLV-EXT-DATA:ephemeral": 0,
        "os-flavor-access:is_public": True,
        "id": id_,
        "links": [
            {"href": f"http://openstack.example.com/v2/6f70656e737461636b20342065766572/flavors/{id_}", "rel": "self"},
            {"href": f"http://openstack.example.com/6f70656e737461636b20342065766572/flavors/{id_}", "rel": "bookmark"},
        ],
        "name": name,
        "ram": ram,
        "swap": "",
        "vcpus": vcpus,
        "rxtx_factor": 1.0,
        "description": None,
        "extra_specs": extra_specs or {},
    }


# the sample's own entries (2: m1.small, 5: m1.xlarge, 6: m1.tiny.specs)
NOVA_FLAVORS = {"flavors": [
    _nova_flavor("2", "m1.small", 2048, 1, 20),
    _nova_flavor("5", "m1.xlarge", 16384, 8, 160),
    _nova_flavor("6", "m1.tiny.specs", 512, 1, 1,
                 {"hw:mem_page_size": "2048", "hw:cpu_policy": "dedicated"}),
]}


def with_nova(cloud):
    """Add a compute endpoint to the token's catalog and Nova's flavor API.

    The catalog entry is the recorded Zun entry with other values (type, name,
    ids, URLs).  openstacksdk's find_flavor first GETs /flavors/<name> (a 404 for
    a name), then lists /flavors/detail?is_public=None and matches the name.
    """
    recorded_token = cloud._token

    def token(request, context):
        body = recorded_token(request, context)
        catalog = body["token"]["catalog"]
        nova = copy.deepcopy(next(s for s in catalog if s["type"] == "container"))
        nova.update(type="compute", name="nova", id="c0" * 16)
        for n, endpoint in enumerate(nova["endpoints"]):
            endpoint.update(url=NOVA, id=f"{n:032x}")
        catalog.append(nova)
        return body

    cloud.m.post(f"{KEYSTONE}/v3/auth/tokens", json=token)
    cloud.m.get(NOVA, json=NOVA_VERSION)
    for name in ("m1.small", "m1.xlarge", "m1.tiny.specs", "m1.gone"):
        cloud.m.get(
            f"{NOVA}/flavors/{name}", status_code=404,
            json={"itemNotFound": {"message": f"Flavor {name} could not be found.", "code": 404}},
        )
    return cloud.m.get(f"{NOVA}/flavors/detail", json=NOVA_FLAVORS)


async def test_nova_flavor_sizes_are_read_and_sent_to_zun(cloud):
    listing = with_nova(cloud)
    creates(cloud)
    config = {"flavors_from_nova": ["m1.small", "m1.tiny.specs"]}
    spawner = make_spawner(config=config)
    form = parse(await spawner.get_options_form())
    assert form.radios("flavor") == [
        "small", "standard", "large", "m1.small", "m1.tiny.specs",
    ]
    spawner.user_options = {"flavor": "m1.small"}
    await spawner.start()
    body = create_body(cloud)
    assert (body["memory"], body["cpu"], body["disk"]) == ("2048", 1.0, 20)
    assert body["labels"]["hub.jupyter.org/flavor"] == "m1.small"
    assert listing.last_request.qs == {"is_public": ["none"]}

    # cached: another spawner does not ask Nova again
    asked = listing.call_count
    other = make_spawner("bob", config=config)
    other.user_options = {"flavor": "m1.tiny.specs"}
    choice = await other.apply_flavor()
    assert listing.call_count == asked
    assert (other.mem_limit, other.cpu_limit) == (512 * 1024 * 1024, 1.0)
    assert (choice.cpu_policy, choice.disk) == ("dedicated", 1)


@pytest.mark.parametrize("name, message", [
    ("m1.gone", "There is no Nova flavor named 'm1.gone'"),
    ("m1.xlarge", "Nova flavor 'm1.xlarge' memory is 16384 MiB; Zun accepts 4-8192 MiB"),
])
async def test_a_nova_flavor_that_cannot_be_used_is_named(cloud, name, message):
    with_nova(cloud)
    spawner = make_spawner(config={"flavors_from_nova": [name]})
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.status_code == 500
    assert message in info.value.message
    assert zun_requests(cloud) == []


async def test_an_unreachable_nova_is_named_with_the_flavor(cloud):
    with_nova(cloud)
    cloud.m.get(f"{NOVA}/flavors/m1.small", exc=requests.exceptions.ConnectionError)
    spawner = make_spawner(config={"flavors_from_nova": ["m1.small"]})
    with pytest.raises(SpawnException) as info:
        await spawner.get_options_form()
    assert "Could not read Nova flavor 'm1.small'" in info.value.message
    assert zun_requests(cloud) == []
