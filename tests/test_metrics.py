"""Prometheus metrics as an operator scrapes them from the hub's registry."""

import pytest
from jupyterhub.spawner import SpawnException
from prometheus_client import REGISTRY, generate_latest

from magnum_spawner import metrics
from magnum_spawner.zun.poller import HubPoller

from .fake_zun import FakeZun
from .helpers import make_spawner
from .recorded import ZUN


def value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0


@pytest.mark.parametrize("method, url, expected", [
    ("GET", "/containers/0b3f2c1e-1111-4222-8333-444455556666", "GET /containers/{id}"),
    ("GET", "http://127.0.0.1:9517/v1/containers?limit=100&status=Error",
     "GET /containers"),
    ("POST", "/containers/jupyter-alice/stop?timeout=10", "POST /containers/{id}/stop"),
    ("DELETE", "/containers/abc?stop=true", "DELETE /containers/{id}"),
    ("POST", "http://127.0.0.1:8776/v3/0123456789abcdef0123456789abcdef/volumes/"
             "7c1e2f3a-0000-4000-8000-000000000000/action", "POST /volumes/{id}/action"),
    ("GET", "volumes/detail?name=home-alice", "GET /volumes/detail"),
    ("POST", "http://127.0.0.1:5000/v3/auth/tokens", "POST /auth/tokens"),
    ("GET", "http://127.0.0.1:9517/", "GET /"),
])
def test_operations_are_bounded_labels_whatever_the_ids_and_names(method, url, expected):
    assert metrics.operation(method, url) == expected


async def test_cloud_calls_are_counted_by_service_operation_and_status(cloud):
    zun = FakeZun().install(cloud.m)
    zun.add("0000aaaa-0000-4000-8000-000000000000", "jupyter-alice")
    spawner = make_spawner("alice")
    ok_before = value("magnum_spawner_cloud_requests_total", service="zun",
                      operation="GET /containers/{id}", status="200")
    missing_before = value("magnum_spawner_cloud_requests_total", service="zun",
                           operation="GET /containers/{id}", status="404")
    tokens_before = value("magnum_spawner_cloud_request_duration_seconds_count",
                          service="keystone", operation="POST /auth/tokens")
    await spawner.zun.get("0000aaaa-0000-4000-8000-000000000000")
    await spawner.zun.get("0000aaaa-0000-4000-8000-000000000000")
    with pytest.raises(Exception):
        await spawner.zun.get("0000ffff-0000-4000-8000-000000000000")
    assert value("magnum_spawner_cloud_requests_total", service="zun",
                 operation="GET /containers/{id}", status="200") == ok_before + 2
    assert value("magnum_spawner_cloud_requests_total", service="zun",
                 operation="GET /containers/{id}", status="404") == missing_before + 1
    # The login is timed too (one token for the three calls).
    assert value("magnum_spawner_cloud_request_duration_seconds_count",
                 service="keystone", operation="POST /auth/tokens") == tokens_before + 1
    text = generate_latest(REGISTRY).decode()
    assert 'magnum_spawner_cloud_request_duration_seconds_bucket{le="0.01",' \
           'operation="GET /containers/{id}",service="zun"}' in text


async def test_an_unreachable_cloud_is_counted_as_such(cloud):
    import requests

    FakeZun().install(cloud.m)
    cloud.m.get(f"{ZUN}/v1/containers/0000bbbb-0000-4000-8000-000000000000",
                exc=requests.exceptions.ConnectionError("refused"))
    spawner = make_spawner("bob")
    before = value("magnum_spawner_cloud_requests_total", service="zun",
                   operation="GET /containers/{id}", status="unreachable")
    with pytest.raises(Exception):
        await spawner.zun.get("0000bbbb-0000-4000-8000-000000000000")
    assert value("magnum_spawner_cloud_requests_total", service="zun",
                 operation="GET /containers/{id}", status="unreachable") == before + 1


async def test_poller_cycles_staleness_and_containers_by_status(cloud):
    zun = FakeZun().install(cloud.m)
    for i, state in enumerate(["Running", "Running", "Stopped", "Error"]):
        zun.add(f"0000{i:04d}-0000-4000-8000-000000000000", f"jupyter-u{i}", status=state)
    spawner = make_spawner("u0", config={"use_hub_poller": True, "hub_poll_interval": 30})
    before = value("magnum_spawner_poller_cycle_seconds_count", kind="full", result="ok")
    poller = HubPoller.for_hub(spawner.zun, "jupyterhub", 30)
    assert await poller.wait_first_load(5)
    assert value("magnum_spawner_poller_cycle_seconds_count", kind="full",
                 result="ok") == before + 1
    assert value("magnum_spawner_containers", hub="jupyterhub", place="default",
                 status="Running") == 2
    assert value("magnum_spawner_containers", hub="jupyterhub", place="default",
                 status="Stopped") == 1
    assert value("magnum_spawner_containers", hub="jupyterhub", place="default",
                 status="Error") == 1
    assert 0 <= value("magnum_spawner_poller_staleness_seconds", hub="jupyterhub",
                      place="default") < 5


async def test_a_replaced_poller_leaves_one_sample_per_series(cloud):
    # A reset (reconfiguration) stops the hub's poller and a new one takes over;
    # the old object may live on until collected. A scrape with two samples of
    # one series is refused whole by Prometheus.
    from magnum_spawner.common import cloud as cloud_context

    zun = FakeZun().install(cloud.m)
    zun.add("0000aaaa-0000-4000-8000-000000000000", "jupyter-u0", status="Running")
    old = HubPoller.for_hub(make_spawner("u0").zun, "jupyterhub", 30)
    assert await old.wait_first_load(5)
    cloud_context.reset()
    zun.add("0000bbbb-0000-4000-8000-000000000000", "jupyter-u1", status="Running")
    new = HubPoller.for_hub(make_spawner("u0").zun, "jupyterhub", 30)
    assert new is not old and await new.wait_first_load(5)
    lines = [line for line in generate_latest(REGISTRY).decode().splitlines()
             if 'hub="jupyterhub"' in line]
    series = [line.rsplit(" ", 1)[0] for line in lines]
    assert len(series) == len(set(series)) == 2, lines  # staleness, Running
    assert value("magnum_spawner_containers", hub="jupyterhub", place="default",
                 status="Running") == 2


async def test_a_failed_start_is_counted_by_the_cause_the_user_saw(cloud):
    # Zun refuses the create for the project's quota: the user reads the quota
    # sentence, the operator's counter says "quota".
    FakeZun().install(cloud.m)

    def quota(b):
        b["errors"][0]["detail"] = "Quota exceeded for resources: ['containers']"
    cloud.reply("POST", f"{ZUN}/v1/containers?run=true", "zun-container-delete-force-as-member",
                change=quota)
    spawner = make_spawner("carol")
    before = value("magnum_spawner_spawn_failures_total", cause="quota")
    with pytest.raises(SpawnException) as e:
        await spawner.start()
    assert "quota" in str(e.value).lower()
    assert value("magnum_spawner_spawn_failures_total", cause="quota") == before + 1


async def test_each_spawn_phase_is_one_line_with_user_container_and_request_id(cloud, caplog):
    from .test_volumes import spawner_for, zun_starts

    zun_starts(cloud)
    spawner = spawner_for(home_volume_size=0)
    caplog.set_level("INFO")
    await spawner.start()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("spawn ")]
    phases = [line.split()[1] for line in lines]
    assert phases[0] == "phase=begin" and phases[-1] == "phase=started"
    assert "phase=progress" in phases
    request_id = spawner._request_id
    assert request_id.startswith("req-")
    for line in lines:
        assert f"user={spawner.user.name}" in line and f"request={request_id}" in line
    assert f"container={spawner.container_id}" in lines[-1]
    # The same id reached Zun with every call of this start, so the cloud's
    # logs carry it as the global request id.
    sent = [r for r in cloud.requests(None, "9517")]
    assert sent and all(r.headers.get("X-OpenStack-Request-ID") == request_id for r in sent)
