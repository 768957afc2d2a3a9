import json
from tests.helpers import make_spawner
from tests.recorded import ZUN, CONTAINER_UUID, status
import pytest

async def test_smoke(cloud):
    cloud.reply("GET", f"{ZUN}/v1/containers?name=jupyter-alice", "zun-containers-list-empty")
    cloud.reply("POST", f"{ZUN}/v1/containers?run=true", "zun-container-create-run")
    cloud.replies("GET", f"{ZUN}/v1/containers/{CONTAINER_UUID}",
        ("zun-container-show-running", status("Creating")),
        ("zun-container-show-running", status("Running")))
    s = make_spawner()
    url = await s.start()
    print(url, json.dumps(cloud.requests("POST")[-1].json(), indent=1))
    print([ (r.method, r.url, r.headers.get("OpenStack-API-Version")) for r in cloud.m.request_history])
