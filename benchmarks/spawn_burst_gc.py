"""Event-loop stalls while N servers start at once through JupyterHub's User.spawn.

JupyterHub itself runs here (``MockHub``: its app, database and
configurable-http-proxy); N users (200 by default) each start their server at
the same moment with ``User.spawn()``.  The cloud is the stateful fake Zun of
``tests/fake_zun.py`` behind requests-mock with the recorded Keystone; the
"containers" are one small HTTP server on loopback.  A 1 ms ticker on the event
loop records the worst lateness (wall clock, which also counts waiting for a
CPU on a shared machine) and the most CPU the loop's own thread spent between
two ticks (the stall the hub's own code causes); ``gc.callbacks`` time every
full (generation 2) collection.

Two ways, each in a fresh process started the same way:

- ``poll``: the heap is frozen (``gc.freeze()``, ``ZunSpawner.hub_gc_freeze``)
  only when the hub-wide poll loop starts, at the first poll, which comes after
  the burst (the spawner before issue 17);
- ``start``: frozen at the first start as well (now).

    python benchmarks/spawn_burst_gc.py [--users 200] [--concurrent-starts N]
"""

import argparse
import asyncio
import gc
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from poller_at_scale import Lag  # noqa: E402  (the 1 ms ticker)

CHP = ROOT / ".cache/node/node_modules/.bin/configurable-http-proxy"


class Callbacks:
    """The longest single callback of the loop, in the loop thread's CPU time.

    When 200 spawns are ready at once, one turn of the loop runs all their steps
    back to back: the ticker's figure is their sum.  This is the longest one
    piece of code held the loop (a collection that ran inside it included).
    """

    def __init__(self):
        self.worst, self.where = 0.0, None
        self._original = run = asyncio.events.Handle._run

        def timed(handle):
            c = time.thread_time()
            run(handle)
            took = time.thread_time() - c
            if took > self.worst:
                task = getattr(handle._callback, "__self__", None)
                where = repr(handle)[:100]
                if isinstance(task, asyncio.Task):
                    frames = task.get_stack()
                    where = " < ".join(f"{f.f_code.co_qualname}:{f.f_lineno}"
                                       for f in frames) or task.get_coro().__qualname__
                self.worst, self.where = took, where

        asyncio.events.Handle._run = timed

    def stop(self):
        asyncio.events.Handle._run = self._original


class FullGCs:
    """Every full collection: how many, the longest in wall-clock and in CPU time.

    A collection holds the interpreter lock: the event loop waits for all of it.
    Its CPU time (the collecting thread's) does not depend on how busy the
    machine is; the wall-clock time does.
    """

    def __init__(self):
        self.times, self.cpu, self._t = [], [], None
        gc.callbacks.append(self._callback)

    def _callback(self, phase, info):
        if info["generation"] != 2:
            return
        if phase == "start":
            self._t = (time.perf_counter(), time.thread_time())
        elif self._t is not None:
            self.times.append(time.perf_counter() - self._t[0])
            self.cpu.append(time.thread_time() - self._t[1])
            self._t = None

    def stop(self):
        gc.callbacks.remove(self._callback)


async def burst(way, users, concurrent_starts):
    import requests_mock
    from jupyterhub import orm
    from jupyterhub.tests.mocking import MockHub
    from tornado import web
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    from magnum_spawner import ZunSpawner
    from magnum_spawner.zun import spawner as spawner_module
    from tests.conftest import PASSWORD_AUTH
    from tests.fake_zun import LifecycleZun
    from tests.recorded import RecordedCloud

    if way == "poll":  # the spawner before issue 17: no freeze at the first start
        spawner_module.freeze_heap_once = lambda enabled: None

    class Hello(web.RequestHandler):
        def get(self, *args):
            self.write({"ok": True})

    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(web.Application([(r"/.*", Hello)]))
    server.add_sockets(sockets)
    tmp = tempfile.mkdtemp()
    with requests_mock.Mocker(real_http=True) as m:
        LifecycleZun(script=["Creating", "Running"]).install(RecordedCloud(m).m)
        hub = MockHub.instance(spawner_class=ZunSpawner,
                               cookie_secret_file=f"{tmp}/cookie_secret")
        hub.config.ConfigurableHTTPProxy.command = [
            str(CHP) if CHP.exists() else shutil.which("configurable-http-proxy")]
        config = hub.config.ZunSpawner
        config.auth = dict(PASSWORD_AUTH)
        config.port = sockets[0].getsockname()[1]
        config.home_volume_size = 0
        config.start_timeout = config.http_timeout = 600
        config.concurrent_starts = concurrent_starts
        # JupyterHub's first poll of a server comes after the burst
        config.poll_interval = 3600
        hub.config.JupyterHub.concurrent_spawn_limit = 0
        await hub.initialize([])
        # MockHub's 2 s (JupyterHub's default is 300 s): its update of every
        # user's activity would otherwise be the longest callback of the burst
        hub.last_activity_interval = 300
        await hub.start()
        for i in range(users + 1):
            hub.db.add(orm.User(name=f"student{i:03d}"))
        hub.db.commit()
        members = [hub.users[u] for u in hub.db.query(orm.User)
                   if u.name.startswith("student")]
        # one server started first: the one-time set-up (the cloud session, the
        # clients, imports) is not part of the burst
        await members.pop().spawn()
        gc.collect()
        tracked = len(gc.get_objects())
        gcs, ticker, callbacks = FullGCs(), Lag(), Callbacks()
        started = time.perf_counter()
        results = await asyncio.gather(*(u.spawn() for u in members), return_exceptions=True)
        seconds = time.perf_counter() - started
        ticker.stop()
        gcs.stop()
        callbacks.stop()
        failed = [r for r in results if isinstance(r, BaseException)]
        grown = len(gc.get_objects()) - tracked
        await asyncio.gather(*(u.stop() for u in hub.users.values() if u.active),
                             return_exceptions=True)
        MockHub.clear_instance()
        await hub.cleanup()
    server.stop()
    return {
        "way": way, "users": users, "started": users - len(failed),
        "failed": sorted({repr(f)[:120] for f in failed}), "seconds": round(seconds, 1),
        "worst_lag_ms": round(ticker.worst * 1000, 1),
        "loop_busy_ms": round(ticker.busy * 1000, 1),
        "longest_callback_ms": round(callbacks.worst * 1000, 1),
        "longest_callback": callbacks.where,
        "tracked_before": tracked, "tracked_growth": grown,
        "frozen": gc.get_freeze_count(),
        "full_gcs": len(gcs.times),
        "longest_full_gc_ms": round(max(gcs.times, default=0) * 1000, 1),
        "longest_full_gc_cpu_ms": round(max(gcs.cpu, default=0) * 1000, 1),
    }


def run_child(way, users, concurrent_starts):
    out = subprocess.run(
        [sys.executable, __file__, "--child", way, "--users", str(users),
         "--concurrent-starts", str(concurrent_starts)],
        capture_output=True, text=True, cwd=ROOT,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        sys.exit(f"the {way} run failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--concurrent-starts", type=int, default=200,
                        help="ZunSpawner.concurrent_starts (default: all at once)")
    parser.add_argument("--child", choices=("poll", "start"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import logging
        import os
        # the hub's database in memory: JupyterHub's own commits (an fsync each,
        # on its event loop) are not what is measured here
        os.environ["JUPYTERHUB_TEST_DB_URL"] = "sqlite:///:memory:"
        logging.disable(logging.WARNING)  # keep the children's output to the figures
        print(json.dumps(asyncio.run(burst(args.child, args.users, args.concurrent_starts))))
        return
    before = run_child("poll", args.users, args.concurrent_starts)
    after = run_child("start", args.users, args.concurrent_starts)
    print(f"{args.users} starts at once through JupyterHub's User.spawn "
          f"(concurrent_starts = {args.concurrent_starts}); load average "
          f"{open('/proc/loadavg').read().split()[0]}")
    print("| heap frozen at | started | burst s | full GCs | longest full GC ms, CPU "
          "(wall) | longest callback ms, CPU | loop thread busy between ticks ms | "
          "worst lag ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in (before, after):
        print(f"| first {r['way']} | {r['started']}/{r['users']} | {r['seconds']} | "
              f"{r['full_gcs']} | {r['longest_full_gc_cpu_ms']} ({r['longest_full_gc_ms']}) | "
              f"{r['longest_callback_ms']} | {r['loop_busy_ms']} | {r['worst_lag_ms']} |")
        for f in r["failed"]:
            print(f"  failure ({r['way']}): {f}")
        print(f"  longest callback ({r['way']}): {r['longest_callback']}")
    for key in ("longest_full_gc_cpu_ms", "longest_callback_ms"):
        ratio = before[key] / after[key] if after[key] else float("inf")
        print(f"{key}: {before[key]} -> {after[key]} ({ratio:.1f}x less)")

if __name__ == "__main__":
    main()
