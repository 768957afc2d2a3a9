"""The poller benchmark's loop against a real cloud (``--cloud NAME``).

Makes ``N`` tiny containers (``--memory`` MiB, 0.1 vCPU, ``sleep``) labelled for a
hub id of its own, waits until they run, runs the same three ways as against the
fake, measures what the cloud really charges (one GET; a list, per container
returned) and deletes every container it made, whatever happens.

    OS_CLIENT_CONFIG_FILE=.cache/local-cloud/clouds.yaml \\
      python benchmarks/poller_at_scale.py 300 --cloud local
"""

import asyncio
import json
import os
import pathlib
import statistics
import threading
import time
import uuid as uuidlib

from magnum_spawner.common import names
from magnum_spawner.common.errors import CloudError
from magnum_spawner.zun import objects
from tests.helpers import make_spawner



def image():
    """The local cloud's notebook image, in its registry (docker.json beside
    clouds.yaml); another cloud's: quay.io's."""
    clouds_yaml = os.environ.get("OS_CLIENT_CONFIG_FILE")
    docker = pathlib.Path(clouds_yaml).with_name("docker.json") if clouds_yaml else None
    if docker and docker.exists():
        return json.loads(docker.read_text())["image"]
    return "quay.io/jupyter/base-notebook"


class CloudCounter:
    """Counts what the hub's Zun client sends and how long each answer takes."""

    def __init__(self, client):
        self.lock = threading.Lock()
        self.reset()
        original = client._request_sync

        def counted(method, url, **kwargs):
            t = time.perf_counter()
            resp = original(method, url, **kwargs)
            took = time.perf_counter() - t
            listed = url.rstrip("/").endswith("/containers") or "/containers?" in url
            items = resp.content.count(b'"uuid"') if listed else 1
            with self.lock:
                self.requests += 1
                self.items += items
                self.charged += took
                (self.list_times if listed else self.get_times).append((took, items))
            return resp

        client._request_sync = counted

    def reset(self):
        self.requests = self.items = 0
        self.charged = 0.0
        self.list_times, self.get_times = [], []

    def stats(self):
        return self.requests, self.items, self.charged


def body(name, hub_id, memory):
    return {"name": name, "image": image(), "command": ["sleep", "7200"],
            "labels": names.hub_labels(hub_id, name, ""), "memory": str(memory),
            "cpu": 0.1, "restart_policy": {"Name": "no"}}


async def make_containers(client, n, hub_id, memory, made, parallel=8):
    """Create ``n`` containers (their uuids go into ``made`` as they come)."""
    todo = iter(range(n))

    async def worker():
        for i in todo:
            c = await client.create(body(f"bench-{hub_id}-{i}", hub_id, memory))
            made.append(c["uuid"])
    await asyncio.gather(*(worker() for _ in range(parallel)))
    deadline = time.monotonic() + 60 + n
    while time.monotonic() < deadline:
        listed = await client.list(limit=1000)
        mine = [c for c in listed if c["uuid"] in set(made)]
        running = sum(c["status"] == "Running" for c in mine)
        failed = [c for c in mine if c["status"] in ("Error", "Stopped", "Dead")]
        if failed:
            raise RuntimeError(f"{len(failed)} containers failed: "
                               f"{objects.describe_failure(failed[0])}")
        if running == len(made):
            return made
        await asyncio.sleep(2)
    raise RuntimeError(f"only {running} of {n} containers running after the wait")


async def delete_containers(client, uuids, parallel=8):
    todo = iter(list(uuids))

    async def worker():
        for u in todo:
            try:
                await client.delete_and_wait(u, timeout=120)
            except CloudError as e:
                print(f"  could not delete {u}: {e}")
    await asyncio.gather(*(worker() for _ in range(parallel)))


async def costs(client, counter):
    """What this cloud charges: one GET, and a list per container returned."""
    listed = await client.list(limit=1000)
    counter.reset()
    for c in listed[:30]:
        await client.get(c["uuid"])
    get_ms = statistics.median(t for t, _ in counter.get_times) * 1000
    counter.reset()
    for _ in range(5):
        await client.list(limit=1000, status="Dead")  # the per-request part
        await client.list(limit=1000)
    empty = statistics.median(t for t, n in counter.list_times if n == 0)
    full = [(t, n) for t, n in counter.list_times if n > 0]
    per_item = statistics.median((t - empty) / n for t, n in full) * 1000
    return get_ms, empty * 1000, per_item


def run_on_cloud(args, measured, run_size, row):
    n = args.sizes[0] if args.sizes else 300
    hub_id = f"bench-{uuidlib.uuid4().hex[:6]}"
    memory = 16
    lines = []

    async def main():
        spawners = []
        for i in range(n):
            s = make_spawner(f"b{i}", config={"cloud": args.cloud, "auth": {},
                                              "hub_id": hub_id, "use_hub_poller": True})
            spawners.append(s)
        client = spawners[0].zun
        await client.ensure_version()
        counter = CloudCounter(client)
        made = []
        try:
            t = time.perf_counter()
            await make_containers(client, n, hub_id, memory, made)
            lines.append(f"made {n} containers ({memory} MiB, 0.1 vCPU, sleep) in "
                         f"{time.perf_counter() - t:.0f} s")
            for s, u in zip(spawners, made):
                s.load_state({"container_id": u})
            get_ms, request_ms, item_ms = await costs(client, counter)
            lines.append(
                f"this cloud charges: GET {get_ms:.1f} ms; list {request_ms:.1f} ms per "
                f"request + {item_ms:.2f} ms per container returned "
                f"(the fake: 16 ms; 16 ms + 1.15 ms)")
            res = await run_size(n, counter, spawners, hub_id)
            for way, key in (("naive", "naive"), ("plain full list", "plain"),
                             ("poller", "poller")):
                lines.append(row(n, way + " (cloud)", res[key]))
            r = res["reattach"]
            lines.append(row(n, f"hub restart: {r['reattach_s']:.1f} s (cloud)", r))
        finally:
            t = time.perf_counter()
            await delete_containers(client, made)
            lines.append(f"deleted them in {time.perf_counter() - t:.0f} s")

    asyncio.run(main())
    return lines
