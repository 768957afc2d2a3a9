"""The hub-wide poller's cost with two places (ZunSpawner.places) against one.

N servers in one place (one project, one fake Keystone + Zun process), and the
same N split evenly over two places (two projects: two fake Keystone + Zun
processes, ``fake_zun_server.py``, which charge Zun 18's measured costs: 1.15 ms
per container a list returns, 16 ms per request).  The real spawner, client and
poller code runs in this process.  Per 15 s interval, over one full period (one
full list and three lists of the statuses that need action, in each place):
Zun requests, containers returned, Zun's charged time, the hub's CPU for the
lists and for every server's poll(), and the time a restarted hub takes to
reattach every server (each place's poller lists its own project at once).

    python benchmarks/places_poller.py [N ...]
"""

import argparse
import asyncio
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fake_zun_server import uuid_of  # noqa: E402
from benchmarks.poller_at_scale import (  # noqa: E402
    CYCLES, FULL_INTERVAL, INTERVAL, FakeCloud, PollCPU, measured)
from magnum_spawner.common import cloud as cloud_context  # noqa: E402
from magnum_spawner.zun.poller import HubPoller  # noqa: E402
from tests.conftest import PASSWORD_AUTH  # noqa: E402
from tests.helpers import make_spawner  # noqa: E402

HUB = "jupyterhub"


class Counters:
    """The fakes' counters, added up."""

    def __init__(self, clouds):
        self.clouds = clouds

    def reset(self):
        for c in self.clouds:
            c.reset()

    def stats(self):
        totals = [c.stats() for c in self.clouds]
        return tuple(sum(t[i] for t in totals) for i in range(3))


def spawners_for(clouds, n):
    """n servers spread evenly over one place per cloud."""
    places = [{"name": f"place-{k}", "auth": {**PASSWORD_AUTH, "auth_url": f"{c.base}/v3"}}
              for k, c in enumerate(clouds)]
    out = []
    per = n // len(clouds)
    for k, place in enumerate(places):
        for i in range(per):
            # (what poll() answers from the map: the fake deletes nothing)
            config = {"use_hub_poller": True, "hub_id": HUB, "hub_poll_interval": INTERVAL,
                      "hub_full_poll_interval": FULL_INTERVAL,
                      "delete_stopped_containers": False}
            if len(places) > 1:
                config["places"] = places
            else:
                config["auth"] = place["auth"]
            s = make_spawner(f"user{k}-{i}", config=config)
            s.load_state({"container_id": uuid_of(i), "place": place["name"]})
            out.append(s)
    return out


def manual_pollers(spawners):
    """Each place's poller, its cycles run by the benchmark instead of its loop."""
    HubPoller.stop_all()
    pollers = {}
    for s in spawners:
        if id(s.zun) not in pollers:
            p = HubPoller.for_hub(s.zun, HUB, INTERVAL, full_interval=FULL_INTERVAL,
                                  gc_freeze=True)
            p.stop()
            p._task = asyncio.get_running_loop().create_future()  # never done
            pollers[id(s.zun)] = p
    return list(pollers.values())


async def run(clouds, spawners):
    results = {}
    for s in {id(s.zun): s for s in spawners}.values():
        await s.zun.ensure_version()
    pollers = manual_pollers(spawners)

    async def cycles():
        for i in range(CYCLES):
            await asyncio.gather(*(p.refresh_full() if i == 0 else p.refresh_action()
                                   for p in pollers))
            await PollCPU.run(spawners)
    results["poller"] = await measured(Counters(clouds), cycles, intervals=CYCLES)

    async def reattach():
        HubPoller.stop_all()
        t0 = time.perf_counter()
        await asyncio.gather(*(s.poll() for s in spawners))
        reattach.seconds = time.perf_counter() - t0
    stats = await measured(Counters(clouds), reattach)
    stats["reattach_s"] = reattach.seconds
    results["reattach"] = stats
    HubPoller.stop_all()
    return results


def row(n, way, r):
    return (f"| {n:>6,} | {way:<22} | {r['requests']:>6.1f} | {r['items']:>7,.0f} | "
            f"{r['zun_s']:>6.2f} | {r['cpu_s'] * 1000:>6.0f} | {r['poll_cpu_s'] * 1000:>6.0f} | "
            + (f"{r['reattach_s']:>5.2f} |" if "reattach_s" in r else "    - |"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 4000])
    args = parser.parse_args()
    clouds = [FakeCloud(), FakeCloud()]
    print(f"interval {INTERVAL:g} s, full list every {FULL_INTERVAL:g} s; Python "
          f"{sys.version.split()[0]}")
    print("|      N | way                    | Zun requests / interval | containers "
          "returned | Zun time s | hub CPU ms, lists | hub CPU ms, N poll() | hub "
          "restart: reattach s |\n|-------:|---|-------:|-------:|-------:|-------:|"
          "-------:|------:|")
    try:
        for n in args.sizes:
            out = {}
            for k in (1, 2):
                cloud_context.reset()
                used = clouds[:k]
                for c in used:
                    c.populate(n // k)
                spawners = spawners_for(used, n)
                out[k] = asyncio.run(run(used, spawners))
                del spawners
            for k, way in ((1, "one place"), (2, "two places (N/2 each)")):
                print(row(n, way + " poller", out[k]["poller"]))
            for k, way in ((1, "one place"), (2, "two places")):
                print(row(n, way + " restart", out[k]["reattach"]))
            one, two = out[1]["poller"], out[2]["poller"]
            print(f"\nN = {n:,}: two places / one, per interval: Zun requests "
                  f"{two['requests'] / one['requests']:.2f}x, Zun time "
                  f"{two['zun_s'] / one['zun_s']:.2f}x, hub CPU (lists) "
                  f"{two['cpu_s'] / one['cpu_s']:.2f}x; reattach "
                  f"{out[2]['reattach']['reattach_s'] / out[1]['reattach']['reattach_s']:.2f}x\n")
    finally:
        for c in clouds:
            c.close()


if __name__ == "__main__":
    main()
