"""The hub-wide poller against one GET per server and the plain full list.

For N servers (100, 1,000, 5,000 by default) and in one run, against a fake
Keystone + Zun in its own process (``fake_zun_server.py``: Zun 18's paging and
filter rules, charging ≈1.15 ms of server time per container a list returns and
16 ms per request), with the real spawner and client code in this process:

- naive: one ``GET /containers/<uuid>`` per server per interval
  (``use_hub_poller = False``);
- plain full list: every interval, every page of the project's containers
  (1,000 per page), parsed on the event loop and kept whole (the poller before
  issue 10, at Zun's largest page);
- poller: what ``HubPoller`` does over one full period (``hub_full_poll_interval``
  60 s / ``hub_poll_interval`` 15 s = 1 full list + 3 lists of the statuses that
  need action), reported per interval; it freezes the heap when it starts, as
  ``ZunSpawner.hub_gc_freeze`` (default on) does — the two ways before it run
  unfrozen.

Each way also answers every server's ``poll()`` once per interval.  Printed per
interval: Zun requests, containers returned, Zun's charged time, the hub's CPU
time (all its threads), the worst event-loop lag seen by a 1 ms ticker (GC
included), and the time a restarted hub takes to reattach N servers.  0.5 % of
the servers are Stopped.  ``--cloud`` runs the same loop against a real cloud
(clouds.yaml entry) instead, with the containers already there.

    python benchmarks/poller_at_scale.py [N ...] [--cloud NAME --hub-id ID]
"""

import argparse
import asyncio
import gc
import json
import pathlib
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from magnum_spawner.common import cloud as cloud_context  # noqa: E402
from magnum_spawner.common.names import LABEL_HUB  # noqa: E402
from magnum_spawner.zun.poller import HubPoller  # noqa: E402
from magnum_spawner.zun.spawner import ZunSpawner  # noqa: E402
from tests.conftest import PASSWORD_AUTH  # noqa: E402
from tests.helpers import make_spawner  # noqa: E402

INTERVAL, FULL_INTERVAL = 15.0, 60.0
CYCLES = int(FULL_INTERVAL / INTERVAL)
STOPPED_SHARE = 0.005


class FakeCloud:
    """The fake in its own process, and its counters."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "fake_zun_server.py")],
            stdout=subprocess.PIPE, text=True,
        )
        port = int(self.proc.stdout.readline().split()[1])
        self.base = f"http://127.0.0.1:{port}"

    def call(self, path, data=None):
        req = urllib.request.Request(
            self.base + path, method="GET" if data is None else "POST",
            data=None if data is None else json.dumps(data).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as resp:
            return json.loads(resp.read())

    def populate(self, n):
        self.call("/_fake/populate", {"n": n, "stopped": max(1, int(n * STOPPED_SHARE))})

    def stats(self):
        s = self.call("/_fake/stats")
        return s["lists"] + s["gets"], s["items"] + s["gets"], s["charged_s"]

    def reset(self):
        self.call("/_fake/reset", {})

    def close(self):
        self.proc.terminate()
        self.proc.wait()


class Lag:
    """Worst lateness of a 1 ms ticker on the event loop.

    Also the most CPU the loop's own thread spent between two ticks (``busy``):
    lag beyond it is time the loop waited for the interpreter lock or for a CPU
    (on a shared machine, other processes).
    """

    def __init__(self):
        self.worst = self.busy = 0.0
        self._task = asyncio.ensure_future(self._tick())

    async def _tick(self):
        while True:
            t, c = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, time.perf_counter() - t - 0.001)
            self.busy = max(self.busy, time.thread_time() - c)

    def stop(self):
        self._task.cancel()
        return self.worst


class FullGCs:
    """Full (generation 2) collections while a way runs, and the longest."""

    def __enter__(self):
        self.count, self.longest, self._t = 0, 0.0, None
        gc.callbacks.append(self._callback)
        return self

    def _callback(self, phase, info):
        if info["generation"] != 2:
            return
        if phase == "start":
            self._t = time.perf_counter()
        elif self._t is not None:
            self.count += 1
            self.longest = max(self.longest, time.perf_counter() - self._t)

    def __exit__(self, *exc):
        gc.callbacks.remove(self._callback)


class PollCPU:
    """CPU time spent answering every server's poll() (the rest is the listing)."""

    total = 0.0

    @classmethod
    async def run(cls, spawners):
        # one after the other, each in its own turn of the loop, as
        # JupyterHub's per-server poll timers call them
        t = time.process_time()
        for s in spawners:
            await s.poll()
            await asyncio.sleep(0)
        cls.total += time.process_time() - t


async def measured(counter, work, intervals=1, separate_lag_pass=True):
    """Cost of ``work()`` per interval: requests, items, Zun s, CPU s, lag s.

    ``cpu_s`` is the hub's CPU (all threads) for getting the cloud's answers;
    ``poll_cpu_s`` that of the poll() calls answered from them.  The event-loop
    lag is measured in a second run of the same work (the 1 ms ticker costs CPU
    for the whole wall time, which Zun's charged time dominates); with
    ``separate_lag_pass=False`` one run does both and CPU includes the ticker.
    """
    gc.collect()
    counter.reset()
    PollCPU.total = 0.0
    lag = None if separate_lag_pass else Lag()
    with FullGCs() as gcs:
        cpu = time.process_time()
        await work()
        cpu = time.process_time() - cpu
    requests, items, charged = counter.stats()
    result = {"requests": requests / intervals, "items": items / intervals,
              "zun_s": charged / intervals, "cpu_s": (cpu - PollCPU.total) / intervals,
              "poll_cpu_s": PollCPU.total / intervals, "full_gcs": gcs.count,
              "gc_s": gcs.longest}
    if separate_lag_pass:
        gc.collect()
        lag = Lag()
        with FullGCs() as gcs:
            await work()
        result["full_gcs"] += gcs.count
        result["gc_s"] = max(result["gc_s"], gcs.longest)
    result["lag_s"] = lag.stop()
    result["busy_s"] = lag.busy
    return result


async def plain_full_list(client, hub_id):
    """The poller before issue 10, at 1,000 per page: parse on the loop, keep all."""
    snapshot, url, params = {}, "/containers", {"limit": 1000}
    while url:
        resp = await client._request("GET", url, params=params)
        page = resp.json()
        items = page.get("containers") or []
        for c in items:
            if (c.get("labels") or {}).get(LABEL_HUB) == hub_id:
                snapshot[c["uuid"]] = c
        nxt = page.get("next")
        url, params = (nxt, None) if nxt and items else (None, None)
    return snapshot


def manual_poller(client, hub_id):
    """The hub's poller, its cycles run by the benchmark instead of its own loop."""
    HubPoller.stop_all()
    poller = HubPoller.for_hub(client, hub_id, INTERVAL, full_interval=FULL_INTERVAL,
                               gc_freeze=True)  # as ZunSpawner.hub_gc_freeze does
    poller.stop()
    poller._task = asyncio.get_running_loop().create_future()  # never done: no loop
    return poller


async def run_size(n, counter, spawners, hub_id):
    gc.unfreeze()  # each size starts as a hub that never polled
    client = spawners[0].zun
    await client.ensure_version()
    results = {}

    async def poll_all():
        await PollCPU.run(spawners)

    async def naive():
        # N GETs in flight together, as N independent poll timers overlap
        await asyncio.gather(*(s.poll() for s in spawners))

    for s in spawners:
        s.use_hub_poller = False
    results["naive"] = await measured(counter, naive, separate_lag_pass=False)

    for s in spawners:
        s.use_hub_poller = True

    async def plain():
        snapshot = await plain_full_list(client, hub_id)
        t = time.process_time()
        for s in spawners:
            snapshot.get(s.container_id)
        PollCPU.total += time.process_time() - t
    results["plain"] = await measured(counter, plain)

    poller = manual_poller(client, hub_id)

    async def cycles():
        for i in range(CYCLES):
            if i == 0:
                await poller.refresh_full()
            else:
                await poller.refresh_action()
            await poll_all()
    results["poller"] = await measured(counter, cycles, intervals=CYCLES)

    async def reattach():
        # a restarted hub: a new poller, every server polled at once (as
        # JupyterHub's start-up does), each waiting for the first list
        HubPoller.stop_all()
        t0 = time.perf_counter()
        await asyncio.gather(*(s.poll() for s in spawners))
        reattach.seconds = time.perf_counter() - t0
    stats = await measured(counter, reattach)
    stats["reattach_s"] = reattach.seconds
    results["reattach"] = stats
    HubPoller.stop_all()
    return results


async def idle_lag():
    lag = Lag()
    await asyncio.sleep(2)
    return lag.stop()


def make_spawners(n, keystone, hub_id, uuid_of):
    out = []
    for i in range(n):
        s = make_spawner(f"user{i}", config={
            "use_hub_poller": True, "hub_id": hub_id,
            "hub_poll_interval": INTERVAL, "hub_full_poll_interval": FULL_INTERVAL,
            "auth": {**PASSWORD_AUTH, "auth_url": f"{keystone}/v3"},
        })
        s.load_state({"container_id": uuid_of(i)})
        out.append(s)
    return out


def row(n, way, r, extra=""):
    per_k = r["cpu_s"] * 1e6 / n
    return (f"| {n:>6,} | {way:<17} | {r['requests']:>7.1f} | {r['items']:>7,.0f} | "
            f"{r['zun_s']:>7.2f} | {r['cpu_s'] * 1000:>7.0f} | {per_k:>6.1f} | "
            f"{r['poll_cpu_s'] * 1000:>6.0f} | {r['lag_s'] * 1000:>6.1f} "
            f"({r['busy_s'] * 1000:.1f}) | "
            f"{r['full_gcs']} / {r['gc_s'] * 1000:.0f} |{extra}")


HEADER = (
    "|      N | way (per 15 s interval) | Zun requests | containers returned "
    "| Zun time s | hub CPU ms, cloud answers | per 1,000 containers | hub CPU ms, "
    "N poll() | worst event-loop lag ms (loop thread busy) | full GCs / longest ms |\n"
    "|-------:|-------------------|--------:|--------:|--------:|--------:|-------:"
    "|-------:|-------:|-------:|"
)


def paper(n, measured_5k):
    """10,000 on paper: Zun's costs from its per-item/per-request charges, hub CPU
    scaled linearly from the largest measured size."""
    m, (size, per) = n, measured_5k
    stopped = m * STOPPED_SHARE
    pages = -(-m // 1000)
    naive = (m, m, m * 0.016)
    plain = (pages, m, pages * 0.016 + m * 0.00115)
    action = (1, stopped, 0.016 + stopped * 0.00115)
    poller = tuple((f + 3 * a) / 4 for f, a in zip(plain, action))
    lines = []
    for way, (req, items, zun) in (("naive", naive), ("plain full list", plain),
                                   ("poller", poller)):
        cpu = per[way]["cpu_s"] * m / size
        lines.append(f"| {m:>6,} | {way + ' (paper)':<17} | {req:>7.1f} | {items:>7,.0f} | "
                     f"{zun:>7.2f} | {cpu * 1000:>7.0f} | {cpu * 1e6 / m:>6.1f} | | | |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100, 1000, 5000])
    parser.add_argument("--cloud", help="clouds.yaml entry of a real cloud instead of the fake")
    parser.add_argument("--hub-id", default="jupyterhub")
    args = parser.parse_args()

    print(f"interval {INTERVAL:g} s, full list every {FULL_INTERVAL:g} s; "
          f"{STOPPED_SHARE:.1%} of servers Stopped; "
          f"{ZunSpawner.api_workers.default_value} API threads; "
          f"Python {sys.version.split()[0]}")
    print(f"idle event loop on this machine right now: worst lag "
          f"{asyncio.run(idle_lag()) * 1000:.1f} ms over 2 s")
    print(HEADER)
    summary = {}
    if args.cloud:
        from benchmarks.poller_local_cloud import run_on_cloud
        for line in run_on_cloud(args, measured, run_size, row):
            print(line)
        return
    cloud = FakeCloud()
    try:
        for n in args.sizes:
            cloud_context.reset()
            cloud.populate(n)
            from benchmarks.fake_zun_server import uuid_of
            spawners = make_spawners(n, cloud.base, args.hub_id, uuid_of)
            res = asyncio.run(run_size(n, cloud, spawners, args.hub_id))
            for way, key in (("naive", "naive"), ("plain full list", "plain"),
                             ("poller", "poller")):
                print(row(n, way, res[key]))
            r = res["reattach"]
            print(row(n, f"hub restart: {r['reattach_s']:.1f} s", r))
            summary[n] = {"naive": res["naive"], "plain full list": res["plain"],
                          "poller": res["poller"]}
            del spawners
        biggest = max(summary)
        for line in paper(10_000, (biggest, summary[biggest])):
            print(line)
        if biggest >= 1000:
            s = summary[biggest]
            print(f"\nat N = {biggest:,}: Zun time per interval, naive / poller = "
                  f"{s['naive']['zun_s'] / s['poller']['zun_s']:.0f}x, plain / poller = "
                  f"{s['plain full list']['zun_s'] / s['poller']['zun_s']:.1f}x")
    finally:
        cloud.close()


if __name__ == "__main__":
    main()
