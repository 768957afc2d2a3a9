"""The Zun REST adapter against recorded Zun answers."""

import asyncio
import json
import threading
import time

import pytest
import requests

from magnum_spawner.common import cloud as cloud_context, errors
from magnum_spawner.zun.client import ZunClient
from magnum_spawner.zun.objects import negotiate_version

from .conftest import PASSWORD_AUTH
from .recorded import CONTAINER_UUID, ZUN, body


@pytest.fixture
def client(cloud):
    session = cloud_context.get_cloud(auth=PASSWORD_AUTH)
    c = ZunClient(
        session.session, region_name="RegionOne", interface="public", retry_delay=0.001
    )
    yield c
    c.close()


async def test_every_request_carries_the_pinned_microversion(cloud, client):
    cloud.reply("GET", f"{ZUN}/v1/containers/{CONTAINER_UUID}", "zun-container-show-running")
    container = await client.get(CONTAINER_UUID)
    assert container["uuid"] == CONTAINER_UUID
    zun_calls = cloud.requests(pattern=r"9517/v1/")
    assert zun_calls and all(
        r.headers["OpenStack-API-Version"] == "container 1.40" for r in zun_calls
    )
    # the version range is read from the service root, once
    assert len(cloud.requests("GET", r"9517/$")) == 1
    await client.get(CONTAINER_UUID)
    assert len(cloud.requests("GET", r"9517/$")) == 1


async def test_older_server_that_still_has_our_features_is_used_at_its_max(cloud, client):
    cloud.zun_root("1.1", "1.36")
    cloud.reply("GET", f"{ZUN}/v1/containers?limit=100", "zun-containers-list-empty")
    assert await client.list() == []
    assert client.api_version == "1.36"
    assert cloud.requests("GET", "containers")[-1].headers["OpenStack-API-Version"] == (
        "container 1.36"
    )


async def test_too_old_server_is_refused_with_both_versions_named(cloud, client):
    cloud.zun_root("1.1", "1.12")
    with pytest.raises(errors.VersionError, match=r"up to 1\.12.*at least 1\.28"):
        await client.list()
    # nothing was sent to /v1 with a version the server does not have
    assert not cloud.requests(pattern="/v1/containers")


def test_negotiate_version_table():
    assert negotiate_version("1.40", "1.28", "1.1", "1.40") == "1.40"
    assert negotiate_version("1.40", "1.28", "1.1", "1.45") == "1.40"
    assert negotiate_version("1.40", "1.28", "1.1", "1.30") == "1.30"
    with pytest.raises(errors.VersionError):
        negotiate_version("1.40", "1.28", "1.1", "1.27")
    with pytest.raises(errors.VersionError, match="oldest microversion is 1.41"):
        negotiate_version("1.40", "1.28", "1.41", "1.50")


@pytest.mark.parametrize(
    "method, url, recording, error, text",
    [
        ("POST", f"{ZUN}/v1/containers?run=true", "zun-container-create-bad-name",
         errors.BadRequest, "does not match"),
        ("GET", f"{ZUN}/v1/containers/jupyter-nobody", "zun-container-show-404",
         errors.NotFound, "could not be found"),
        ("GET", f"{ZUN}/v1/containers/jupyter-alice", "zun-container-show-by-name",
         errors.Conflict, "Multiple containers"),
        ("GET", f"{ZUN}/v1/containers?all_projects=true", "zun-quotas-project",
         errors.Forbidden, "Policy doesn't allow"),
        ("GET", f"{ZUN}/v1/containers?limit=100", "zun-v1-wrong-service-type-header",
         errors.NotAcceptable, "Not Acceptable"),
        ("GET", f"{ZUN}/v1/containers?limit=100", "zun-v1-version-too-high",
         errors.ServerError, "too-high OpenStack-API-Version"),
    ],
)
async def test_errors_are_typed_with_status_detail_and_request_id(
    cloud, client, method, url, recording, error, text
):
    cloud.reply(method, url, recording, headers={"X-Openstack-Request-Id": "req-abc"})
    with pytest.raises(error) as info:
        if method == "POST":
            await client.create({"name": "-bad name!"})
        elif "jupyter-" in url:
            await client.get(url.rsplit("/", 1)[1])
        elif "all_projects" in url:
            await client.list(all_projects="true")
        else:
            await client.list()
    assert text in str(info.value)
    assert info.value.request_id == "req-abc"
    assert info.value.status == info.value.__class__.status or info.value.status >= 500
    # Zun's schema errors end in the whole JSON schema: the message stops before it
    assert "Failed validating" not in info.value.detail


async def test_zun_over_quota_403_is_overquota(cloud, client):
    def quota(b):
        b["errors"][0]["detail"] = "Quota exceeded for resources: ['containers']"
    cloud.reply("POST", f"{ZUN}/v1/containers?run=true", "zun-container-delete-force-as-member",
                change=quota)
    with pytest.raises(errors.OverQuota):
        await client.create({"name": "x"})


async def test_unreachable_zun_is_typed(cloud, client):
    cloud.m.get(f"{ZUN}/v1/containers?limit=100", exc=requests.exceptions.ConnectionError)
    with pytest.raises(errors.Unreachable, match="cannot reach the Zun API"):
        await client.list()


async def test_create_is_never_retried_but_reads_are(cloud, client):
    cloud.m.post(f"{ZUN}/v1/containers?run=true", exc=requests.exceptions.ConnectionError)
    with pytest.raises(errors.Unreachable):
        await client.create({"name": "jupyter-alice"})
    assert len(cloud.requests("POST", "containers")) == 1
    cloud.m.get(f"{ZUN}/v1/containers/{CONTAINER_UUID}", [
        {"exc": requests.exceptions.ConnectionError},
        {"json": body("zun-container-show-running"), "status_code": 200},
    ])
    await client.get(CONTAINER_UUID)
    assert len(cloud.requests("GET", CONTAINER_UUID)) == 2


async def test_a_read_answered_500_once_is_asked_again(cloud, client):
    # Zun answers 500 for a database or message-bus hiccup (the recorded 500 is
    # its plain-text one); a start must not fail on a look that asking again fixes
    cloud.m.get(f"{ZUN}/v1/containers?name=jupyter-alice", [
        {"status_code": 500, "text": "", "headers": {"Content-Type": "text/plain"}},
        {"json": body("zun-containers-list-filter-name"), "status_code": 200},
    ])
    found = await client.find_by_name("jupyter-alice")
    assert {c["name"] for c in found} == {"jupyter-alice"}
    assert len(cloud.requests("GET", "name=jupyter-alice")) == 2


async def test_a_read_that_meets_four_faults_in_a_row_still_gets_its_answer(cloud, client):
    # the 200-spawn fault burst lost a start to one look answered 504, 503, a
    # reset and then 500: a write's two retries are too few for a read
    fault = {"status_code": 500, "text": "", "headers": {"Content-Type": "text/plain"}}
    cloud.m.get(f"{ZUN}/v1/containers?name=jupyter-alice", [
        dict(fault, status_code=504), dict(fault, status_code=503), fault, fault,
        {"json": body("zun-containers-list-filter-name"), "status_code": 200},
    ])
    found = await client.find_by_name("jupyter-alice")
    assert {c["name"] for c in found} == {"jupyter-alice"}
    assert len(cloud.requests("GET", "name=jupyter-alice")) == 5


async def test_a_read_answered_500_every_time_still_fails_and_a_create_is_not_resent(
        cloud, client):
    cloud.reply("GET", f"{ZUN}/v1/containers/{CONTAINER_UUID}", "zun-v1-version-too-high")
    with pytest.raises(errors.CloudError):
        await client.get(CONTAINER_UUID)
    assert len(cloud.requests("GET", CONTAINER_UUID)) == 5  # the first and four retries
    cloud.reply("POST", f"{ZUN}/v1/containers?run=true", "zun-v1-version-too-high")
    with pytest.raises(errors.CloudError):
        await client.create({"name": "jupyter-alice"})
    assert len(cloud.requests("POST", "containers")) == 1


async def test_list_follows_next_links_across_pages(cloud, client):
    first = body("zun-containers-list-limit")
    second = body("zun-containers-list-limit")
    second["containers"][0]["uuid"] = "second-uuid"
    second["next"] = None
    cloud.m.get(f"{ZUN}/v1/containers?limit=1", json=first)
    cloud.m.get(first["next"], json=second)
    found = await client.list(limit=1)
    assert [c["uuid"] for c in found] == [CONTAINER_UUID, "second-uuid"]


async def test_find_by_name_compares_exactly(cloud, client):
    def add_lookalike(b):
        other = dict(b["containers"][0], name="jupyter-alice2", uuid="other")
        b["containers"].append(other)
    cloud.reply("GET", f"{ZUN}/v1/containers?name=jupyter-alice", "zun-containers-list-filter-name",
                change=add_lookalike)
    found = await client.find_by_name("jupyter-alice")
    # the recording holds two containers that really share the name (Zun allows
    # it); the look-alike name is dropped
    assert len(found) == 2
    assert {c["name"] for c in found} == {"jupyter-alice"}
    assert "other" not in {c["uuid"] for c in found}


async def test_delete_uses_stop_never_force_and_404_is_done(cloud, client):
    cloud.reply("DELETE", f"{ZUN}/v1/containers/{CONTAINER_UUID}?stop=true",
                "zun-container-delete-stop-true")
    cloud.reply("GET", f"{ZUN}/v1/containers/{CONTAINER_UUID}", "zun-container-show-after-delete")
    await client.delete_and_wait(CONTAINER_UUID, timeout=5, interval=0.01)
    deletes = cloud.requests("DELETE")
    assert len(deletes) == 1 and "stop=true" in deletes[0].url and "force" not in deletes[0].url


async def test_the_event_loop_keeps_running_during_a_slow_call(cloud, client):
    release = threading.Event()

    def slow(request, context):
        release.wait(5)
        return body("zun-container-show-running")

    cloud.m.get(f"{ZUN}/v1/containers/{CONTAINER_UUID}", json=slow)
    await client.ensure_version()
    call = asyncio.ensure_future(client.get(CONTAINER_UUID))
    ticks = 0
    start = time.monotonic()
    while time.monotonic() - start < 0.3:
        await asyncio.sleep(0.01)
        ticks += 1
    assert not call.done()
    assert ticks > 10  # the loop ran other work while the request was in flight
    release.set()
    assert (await call)["uuid"] == CONTAINER_UUID


@pytest.mark.parametrize("text", [
    '{"containers": [{"uuid": "a", "x": [1, {"y": "]"}]}, {"uuid": "b"}], "next": "n"}',
    '{ "next" : null ,\n "containers" : [ ] }',
    '{"next": "http://z/v1/containers?marker=b", "containers": [{"uuid": "b", "s": "}"}]}',
])
def test_a_page_parsed_container_by_container_equals_json_loads(text):
    from magnum_spawner.zun.client import parse_page
    whole = json.loads(text)
    kept, nxt = parse_page(text, lambda c: c)
    assert [c for c, _ in kept] == whole["containers"]
    assert [u for _, u in kept] == [c["uuid"] for c in whole["containers"]]
    assert nxt == whole["next"]


@pytest.mark.parametrize("exc, reason", [
    (requests.exceptions.ConnectionError(
        "HTTPConnectionPool(host='127.0.0.1', port=9517): Max retries exceeded with url: "
        "/v1/containers (Caused by ProtocolError('Connection aborted.', "
        "ConnectionResetError(104, 'Connection reset by peer')))"),
     "at 127.0.0.1:9517 (the connection was reset)"),
    (requests.exceptions.ConnectionError(
        "HTTPConnectionPool(host='127.0.0.1', port=9517): Max retries exceeded (Caused by "
        "NewConnectionError('<urllib3.connection.HTTPConnection>: Failed to establish a "
        "new connection: [Errno 111] Connection refused'))"),
     "at 127.0.0.1:9517 (the connection was refused)"),
])
async def test_an_unreachable_api_is_named_in_plain_words(cloud, client, exc, reason):
    """What the spawn page shows: where, and what went wrong, not nested reprs."""
    cloud.m.get(f"{ZUN}/v1/containers/{CONTAINER_UUID}", exc=exc)
    with pytest.raises(errors.Unreachable) as info:
        await client.get(CONTAINER_UUID)
    assert info.value.detail == f"cannot reach the Zun API {reason}"
    assert "Error(" not in str(info.value) and "Errno" not in str(info.value)


def paged_zun(cloud, link_base):
    from .fake_zun import FakeZun
    zun = FakeZun().install(cloud.m)  # answers lists on any host
    zun.link_base = link_base
    for i in range(5):
        zun.add(f"0000000{i}-0000-4000-8000-000000000000")
    return zun


async def test_a_next_link_to_another_host_is_paged_on_the_catalogs_endpoint(cloud, client,
                                                                            caplog):
    """Zun behind a proxy may name a host of its own in ``next``: the hub's token
    goes only to the catalog's endpoint, and the listing is still complete."""
    paged_zun(cloud, "http://zun-internal.example:9517/v1")
    with caplog.at_level("WARNING"):
        found = await client.list(limit=2)
    assert len(found) == 5
    lists = cloud.requests("GET", "/v1/containers")
    assert len(lists) == 3
    assert {r.netloc for r in lists} == {"127.0.0.1:9517"}
    assert [r.qs.get("marker") for r in lists] == [
        None, ["00000001-0000-4000-8000-000000000000"],
        ["00000003-0000-4000-8000-000000000000"]]
    assert "zun-internal.example:9517" in caplog.text


async def test_a_next_link_off_the_container_api_is_refused(cloud, client, caplog):
    paged_zun(cloud, "http://elsewhere.example/collect")
    with caplog.at_level("ERROR"), pytest.raises(errors.CloudError, match="next"):
        await client.list(limit=2)
    assert {r.netloc for r in cloud.requests("GET", "containers")} == {"127.0.0.1:9517"}
    assert "http://elsewhere.example/collect/containers" in caplog.text


async def test_logs_come_back_as_the_servers_lines_not_a_json_string(cloud, client):
    """Zun's logs controller is exposed as JSON: the body is one quoted string
    with its newlines escaped.  The hub's log shows the lines themselves."""
    url = f"{ZUN}/v1/containers/{CONTAINER_UUID}/logs?stdout=true&stderr=true&tail=5"
    cloud.m.get(url, json='[I ServerApp] starting\n[E ServerApp] "quoted" failure\n')
    assert await client.logs(CONTAINER_UUID, tail=5) == (
        '[I ServerApp] starting\n[E ServerApp] "quoted" failure\n')
