#!/usr/bin/env python3
"""A class arrives: N simulated students against a running hub (`make demo`).

Each student, in a thread of their own, arriving --ramp seconds after the
previous one:

1. login   - the hub's login form (GET for the _xsrf cookie, POST name and
             password), then a token of their own (POST /hub/api/users/<name>/tokens)
2. start   - POST /hub/api/users/<name>/server with the chosen flavor, until
             the hub reports the server ready (the spawn, as the student waits)
3. cell    - a kernel in their server, one cell run over the websocket
             (``print(sum(range(10**6)))``), the kernel deleted
4. stop    - DELETE the server, until the hub reports it gone

It prints, per phase, how many succeeded and failed with the min / median /
max time of the successes, the first error of each kind, and what the class
left in the cloud (containers and home volumes of the hub, by status, as the
hub's own credentials list them).  Nothing is asserted: this is a measurement.

    make demo &        # the hub on http://127.0.0.1:8000, the local cloud
    .venv/bin/python benchmarks/load_students.py --students 50

Only loopback: the hub URL must be on 127.0.0.0/8 (or localhost).
"""

import argparse
import asyncio
import collections
import json
import os
import pathlib
import statistics
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import requests

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# The e2e harness's ways to wait and to run a cell (tornado websocket).
from tests.e2e.conftest import LocalCloud, execute_cell, wait_for  # noqa: E402
PHASES = ("login", "start", "cell", "stop")
CELL = "print(sum(range(10**6)))"
EXPECTED = str(sum(range(10**6)))


class Failed(Exception):
    pass


def wait(predicate, timeout, interval=1.0, what="condition"):
    try:
        return wait_for(predicate, timeout, interval, what)
    except AssertionError as e:
        raise Failed(str(e)) from None


class Student:
    def __init__(self, args, name):
        self.args = args
        self.name = name
        self.http = requests.Session()
        self.token = None

    @property
    def hub(self):
        return self.args.hub_url.rstrip("/")

    def api(self, method, path, **kw):
        headers = kw.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        return self.http.request(method, f"{self.hub}/hub/api{path}", headers=headers,
                                 timeout=60, **kw)

    # -- the phases --------------------------------------------------------

    def login(self):
        r = self.http.get(f"{self.hub}/hub/login", timeout=60)
        r.raise_for_status()
        xsrf = self.http.cookies.get("_xsrf", "")
        r = self.http.post(f"{self.hub}/hub/login", timeout=60, data={
            "username": self.name, "password": self.args.password, "_xsrf": xsrf})
        if r.status_code != 200 or "/hub/login" in r.url:
            raise Failed(f"login refused ({r.status_code} at {urllib.parse.urlsplit(r.url).path})")
        xsrf = self.http.cookies.get("_xsrf", xsrf)
        r = self.api("POST", f"/users/{self.name}/tokens", headers={"X-XSRFToken": xsrf},
                     json={"note": "load test", "expires_in": 3600})
        if r.status_code != 201:
            raise Failed(f"token: {r.status_code} {r.text[:200]}")
        self.token = r.json()["token"]

    def server(self):
        r = self.api("GET", f"/users/{self.name}")
        r.raise_for_status()
        return (r.json().get("servers") or {}).get("")

    def start(self):
        r = self.api("POST", f"/users/{self.name}/server", json={"flavor": self.args.flavor})
        if r.status_code not in (201, 202):
            raise Failed(f"start refused: {r.status_code} {_message(r)}")

        def ready():
            s = self.server()
            if s is None:
                raise Failed(f"start failed: {self._last_spawn_error()}")
            return s.get("ready")

        wait(ready, self.args.start_timeout, 1.0, "the server")

    def _last_spawn_error(self):
        r = self.api("GET", f"/users/{self.name}/server/progress", stream=True)
        try:
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event.get("failed"):
                        return event.get("message")
        except Exception:
            pass
        finally:
            r.close()
        return "the server is gone"

    def cell(self):
        base = f"{self.hub}/user/{self.name}"
        headers = {"Authorization": f"token {self.token}"}
        r = self.http.post(f"{base}/api/kernels", json={}, headers=headers, timeout=60)
        if r.status_code != 201:
            raise Failed(f"kernel: {r.status_code} {r.text[:200]}")
        kernel = r.json()["id"]
        try:
            url = base.replace("http://", "ws://") + f"/api/kernels/{kernel}/channels"
            out = asyncio.run(execute_cell(url, headers, CELL, self.args.cell_timeout))
            if out["error"] or out["died"] or out["stdout"].strip() != EXPECTED:
                raise Failed(f"cell: {out['error'] or out['stdout'].strip()[:80]!r}"
                             f"{' (kernel died)' if out['died'] else ''}")
        finally:
            self.http.delete(f"{base}/api/kernels/{kernel}", headers=headers, timeout=60)

    def stop(self):
        r = self.api("DELETE", f"/users/{self.name}/server")
        if r.status_code not in (202, 204):
            raise Failed(f"stop refused: {r.status_code} {_message(r)}")
        wait(lambda: not (self.server() or {}).get("ready") and not (
            self.server() or {}).get("pending"), self.args.stop_timeout, 1.0, "the stop")


def _message(r):
    try:
        return r.json().get("message", r.text[:200])
    except ValueError:
        return r.text[:200]


def run_student(args, name, results, lock, barrier=None):
    student = Student(args, name)
    for phase in PHASES:
        if phase == "stop" and barrier is not None:
            # --hold: every server stays up until the whole class has started.
            barrier.wait()
        t0 = time.monotonic()
        try:
            getattr(student, phase)()
        except Exception as e:  # a failed phase ends this student's visit
            with lock:
                results[phase].append((False, time.monotonic() - t0, f"{type(e).__name__}: {e}"))
            if phase != "stop" and student.token:
                try:  # leave nothing running
                    student.api("DELETE", f"/users/{name}/server")
                except Exception:
                    pass
            if barrier is not None and phase != "stop":
                barrier.abort_one()
            return
        with lock:
            results[phase].append((True, time.monotonic() - t0, None))


class HoldBarrier:
    """--hold: students wait here before stopping; once every student has
    started (or failed), the servers run SECONDS more, what they hold is
    printed, and the stops begin."""

    def __init__(self, parties, seconds):
        self.left = parties
        self.seconds = seconds
        self.lock = threading.Lock()
        self.release = threading.Event()

    def _arrive(self):
        with self.lock:
            self.left -= 1
            last = self.left == 0
        if last:
            threading.Thread(target=self._report_then_release, daemon=True).start()

    def wait(self):
        self._arrive()
        self.release.wait()

    def abort_one(self):
        self._arrive()

    def _report_then_release(self):
        time.sleep(self.seconds)
        print(f"\nholding: {held_report()}", flush=True)
        self.release.set()


def held_report():
    """Running containers and the memory they use, from the local driver's cgroups."""
    base = pathlib.Path("/sys/fs/cgroup/memory/zun-local")
    if not base.is_dir():
        return "(no local cgroups to read)"
    groups = [g for g in base.iterdir() if (g / "cgroup.procs").exists()
              and (g / "cgroup.procs").read_text().strip()]
    usage = sum(int((g / "memory.usage_in_bytes").read_text()) for g in groups)
    rss = 0
    for g in groups:
        for line in (g / "memory.stat").read_text().splitlines():
            if line.startswith("total_rss "):
                rss += int(line.split()[1])
    mem = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    avail = int(mem["MemAvailable"].split()[0]) // 1024
    n = len(groups)
    return (f"{n} running containers; memory charged {usage / 2**20:.0f} MiB "
            f"(RSS {rss / 2**20:.0f} MiB, {rss / 2**20 / max(n, 1):.0f} MiB each); "
            f"host MemAvailable {avail} MiB")


def cloud_leftovers(hub_id):
    """Containers and volumes of this hub, by status, as the hub's project sees
    them (through python-zunclient and openstacksdk, as the e2e suite checks)."""
    cloud = LocalCloud(os.environ["OS_CLIENT_CONFIG_FILE"],
                       os.environ.get("LOCAL_HUB_CLOUD", "local"))
    label = {"hub.jupyter.org/hub": hub_id}
    return (collections.Counter(c.get("status") for c in cloud.containers(**label)),
            collections.Counter(v.status for v in cloud.volumes(**label)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hub-url", default="http://127.0.0.1:8000")
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--ramp", type=float, default=1.0,
                        help="seconds between two students' arrivals (default 1)")
    parser.add_argument("--password", default=os.environ.get("LOCAL_HUB_PASSWORD",
                                                             "demo-password"))
    parser.add_argument("--flavor", default="small")
    parser.add_argument("--prefix", default="student")
    parser.add_argument("--start-timeout", type=float, default=300)
    parser.add_argument("--stop-timeout", type=float, default=180)
    parser.add_argument("--cell-timeout", type=float, default=120)
    parser.add_argument("--hold", type=float, default=None, metavar="SECONDS",
                        help="keep every server running until the whole class has "
                             "started, then SECONDS more; report what they hold; then stop")
    parser.add_argument("--hub-id", default=os.environ.get("LOCAL_HUB_ID", "local-demo"),
                        help="ZunSpawner.hub_id of the hub (for the cloud's leftovers)")
    args = parser.parse_args()
    host = urllib.parse.urlsplit(args.hub_url).hostname or ""
    if not (host == "localhost" or host.startswith("127.")):
        parser.error("the hub must be on loopback (127.0.0.0/8 or localhost)")

    os.environ.setdefault("OS_CLIENT_CONFIG_FILE",
                          str(REPO / ".cache" / "local-cloud" / "clouds.yaml"))
    results = collections.defaultdict(list)
    lock = threading.Lock()
    names = [f"{args.prefix}{i:03d}" for i in range(1, args.students + 1)]
    t0 = time.monotonic()
    print(f"{args.students} students, one every {args.ramp:g} s, flavor {args.flavor}, "
          f"hub {args.hub_url}", flush=True)
    barrier = HoldBarrier(args.students, args.hold) if args.hold is not None else None
    with ThreadPoolExecutor(max_workers=args.students) as pool:
        futures = []
        for name in names:
            futures.append(pool.submit(run_student, args, name, results, lock, barrier))
            time.sleep(args.ramp)
        for f in futures:
            f.result()
    wall = time.monotonic() - t0

    print(f"\nwall time {wall:.0f} s\n")
    print("| phase | ok | failed | min s | median s | max s |")
    print("|---|---:|---:|---:|---:|---:|")
    for phase in PHASES:
        done = results[phase]
        ok = sorted(t for good, t, _ in done if good)
        failed = [e for good, _, e in done if not good]
        figures = (f"{ok[0]:.1f} | {statistics.median(ok):.1f} | {ok[-1]:.1f}"
                   if ok else "- | - | -")
        print(f"| {phase} | {len(ok)} | {len(failed)} | {figures} |")
    errors = collections.Counter(e for phase in PHASES for good, _, e in results[phase] if e)
    if errors:
        print("\nfailures (count: first words):")
        for error, n in errors.most_common(10):
            print(f"  {n}: {error[:200]}")
    # What the class left behind once every student stopped.
    time.sleep(5)
    try:
        containers, volumes = cloud_leftovers(args.hub_id)
        print(f"\nleft in the cloud (hub {args.hub_id}): containers "
              f"{dict(containers) or 0}; home volumes {dict(volumes) or 0}")
    except Exception as e:
        print(f"\ncould not list the cloud's leftovers: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
