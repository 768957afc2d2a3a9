"""The hub's /hub/metrics on the local cloud, scraped as Prometheus would.

One hub, one server that starts and one that fails (an image the cloud does
not have): the scrape shows the Keystone, Zun and Cinder calls the hub made
with their latencies, the poller's cycles and staleness, the hub's containers
by status, and the failed start under its cause.
"""

import re

import pytest
import requests

from .conftest import IMAGE, wait_for
from .test_home_volumes_e2e import cleanup

pytestmark = pytest.mark.localcloud

EXTRA = f"""
c.JupyterHub.load_roles.append({{"name": "scraper", "scopes": ["read:metrics"],
                                "services": ["e2e"]}})


def _image(spawner):
    if spawner.user.name == "metrics-fail":
        return "quay.io/jupyter/no-such-image"
    return {IMAGE!r}  # the local cloud's notebook image (its registry on the Docker path)


c.ZunSpawner.image = _image
"""


def scrape(hub):
    r = requests.get(f"{hub.url}/hub/metrics", timeout=10,
                     headers={"Authorization": f"token {hub.token}"})
    assert r.status_code == 200, r.text[:300]
    samples = {}
    for line in r.text.splitlines():
        m = re.match(r"^(\w+)(\{[^}]*\})? (\S+)$", line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            samples.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return samples


def total(samples, name, **labels):
    return sum(v for lab, v in samples.get(name, [])
               if all(lab.get(k) == x for k, x in labels.items()))


def test_metrics_show_cloud_calls_poller_containers_and_failures(hub_factory):
    hub = hub_factory(EXTRA)
    try:
        hub.start_server("metrics-ok")
        r = hub.request_start("metrics-fail")
        # a fast failure is the start request's own answer
        assert r.status_code in (201, 202) or "no-such-image" in r.text, r.text
        wait_for(lambda: not (hub.server("metrics-fail") or {}).get("pending"), 120, 1,
                 "the failing start to end")
        m = wait_for(lambda: (lambda s: s if total(
            s, "magnum_spawner_containers", hub=hub.hub_id, status="Running") >= 1 else None
        )(scrape(hub)), 30, 1, "the poller to list the running container")

        # Cloud calls, by service, operation and status, with latencies.
        assert total(m, "magnum_spawner_cloud_requests_total", service="zun",
                     operation="POST /containers", status="202") >= 2
        assert total(m, "magnum_spawner_cloud_requests_total", service="zun",
                     operation="GET /containers") >= 1
        assert total(m, "magnum_spawner_cloud_requests_total", service="cinder") >= 1
        assert total(m, "magnum_spawner_cloud_requests_total", service="keystone",
                     operation="POST /auth/tokens", status="201") >= 1
        assert total(m, "magnum_spawner_cloud_request_duration_seconds_count",
                     service="zun", operation="POST /containers") >= 2
        assert total(m, "magnum_spawner_cloud_request_duration_seconds_sum",
                     service="zun", operation="POST /containers") > 0
        # The poller: cycles timed, its map fresh.
        assert total(m, "magnum_spawner_poller_cycle_seconds_count", result="ok") >= 1
        staleness = total(m, "magnum_spawner_poller_staleness_seconds", hub=hub.hub_id)
        assert 0 <= staleness < 30
        # The failed start, under the cause the student was shown.
        assert total(m, "magnum_spawner_spawn_failures_total",
                     cause="container-error") >= 1
    finally:
        cleanup(hub, "metrics-ok", "metrics-fail")
