#!/usr/bin/env python3
"""A class arrives: N simulated students against a running hub (`make demo`).

Each student, in a thread of their own, arriving --ramp seconds after the
previous one:

1. login   - the hub's login form (GET for the _xsrf cookie, POST name and
             password), then a token of their own (POST /hub/api/users/<name>/tokens)
2. start   - POST /hub/api/users/<name>/server with the chosen flavor, until
             JupyterLab's page loads (/user/<name>/lab): the student's click
             to JupyterLab.  An impatient student (--click-again) clicks Start
             again every so many seconds while waiting, as students do.
3. cell    - a kernel in their server, one cell run over the websocket
             (``print(sum(range(10**6)))``)
4. work    - the student keeps working for --work seconds (default a random
             60-120): the same cell every 10 s in that kernel, then the kernel
             is deleted
5. stop    - DELETE the server, until the hub reports it gone

It prints, per phase, how many succeeded and failed with the min / median /
max time of the successes; the click-to-JupyterLab time of the first student
to arrive, the median and the last to arrive; the spawns the hub made (its
log's "spawn phase=begin" lines during the run: more spawns than students means
starts thrown away and made again); the machine's load average; the first
error of each kind; and what the class left in the cloud (containers and home
volumes of the hub, by status, as the hub's own credentials list them).
Nothing is asserted: this is a measurement.

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
import random
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
PHASES = ("login", "start", "cell", "work", "stop")
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

    def click_start(self):
        r = self.api("POST", f"/users/{self.name}/server", json={"flavor": self.args.flavor})
        if r.status_code not in (201, 202):
            raise Failed(f"start refused: {r.status_code} {_message(r)}")

    def start(self):
        self.click_start()
        clicked = time.monotonic()
        retries = self.args.retries

        def ready():
            nonlocal clicked, retries
            s = self.server()
            if s is None:
                error = self._last_spawn_error()
                if retries <= 0:
                    raise Failed(f"start failed: {error}")
                retries -= 1  # "try again": the student clicks Start once more
                self.failures.append(error)
                self.click_start()
                clicked = time.monotonic()
                return None
            if (not s.get("ready") and self.args.click_again
                    and time.monotonic() - clicked > self.args.click_again):
                self.click_start()  # "is it doing anything?": a second click
                clicked = time.monotonic()
            return s.get("ready")

        wait(ready, self.args.start_timeout, 1.0, "the server")
        r = self.http.get(f"{self.hub}/user/{self.name}/lab", timeout=120,
                          headers={"Authorization": f"token {self.token}"})
        if r.status_code != 200 or "jupyter-config-data" not in r.text:
            raise Failed(f"JupyterLab's page: {r.status_code} {r.text[:200]}")

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

    @property
    def _headers(self):
        return {"Authorization": f"token {self.token}"}

    def _run_cell(self):
        base = f"{self.hub}/user/{self.name}"
        url = base.replace("http://", "ws://") + f"/api/kernels/{self.kernel}/channels"
        out = asyncio.run(execute_cell(url, self._headers, CELL, self.args.cell_timeout))
        if out["error"] or out["died"] or out["stdout"].strip() != EXPECTED:
            raise Failed(f"cell: {out['error'] or out['stdout'].strip()[:80]!r}"
                         f"{' (kernel died)' if out['died'] else ''}")

    def cell(self):
        base = f"{self.hub}/user/{self.name}"
        r = self.http.post(f"{base}/api/kernels", json={}, headers=self._headers, timeout=60)
        if r.status_code != 201:
            raise Failed(f"kernel: {r.status_code} {r.text[:200]}")
        self.kernel = r.json()["id"]
        self._run_cell()

    def work(self):
        """The class's work: the cell again every 10 s for the student's time."""
        low, _, high = self.args.work.partition("-")
        until = time.monotonic() + random.uniform(float(low), float(high or low))
        try:
            while time.monotonic() < until:
                time.sleep(min(10, max(until - time.monotonic(), 0)))
                self._run_cell()
        finally:
            self.http.delete(f"{self.hub}/user/{self.name}/api/kernels/{self.kernel}",
                             headers=self._headers, timeout=60)

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
    student.kernel = None
    student.failures = []
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
            results["retried"].extend(student.failures)
            student.failures = []
            if phase == "start":
                results["start_by"][name] = (True, time.monotonic() - t0, None)


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _count_spawns(path, offset):
    """The hub's "spawn phase=begin" lines written since ``offset``."""
    if offset is None:
        return None
    with open(path, "rb") as f:
        f.seek(offset)
        return sum(1 for line in f if b"spawn phase=begin " in line)


class LoadWatch:
    """The machine's 1-minute load average, sampled every 5 s during the run."""

    def __init__(self):
        self.samples = [os.getloadavg()[0]]
        self._done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self._done.wait(5):
            self.samples.append(os.getloadavg()[0])

    def stop(self):
        self._done.set()
        self.samples.append(os.getloadavg()[0])

    def describe(self):
        s = self.samples
        return (f"{s[0]:.1f} at the start, median {statistics.median(s):.1f}, "
                f"max {max(s):.1f}, {s[-1]:.1f} at the end")


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
    parser.add_argument("--work", default="60-120", metavar="SECONDS[-SECONDS]",
                        help="how long each student works after the first cell (a "
                             "random time in the range; default 60-120; 0: none)")
    parser.add_argument("--click-again", type=float, default=20, metavar="SECONDS",
                        help="a waiting student clicks Start again every SECONDS "
                             "(default 20; 0: never)")
    parser.add_argument("--retries", type=int, default=1,
                        help="a student whose start failed clicks Start again this "
                             "many times (default 1)")
    parser.add_argument("--hub-log", default=str(REPO / ".cache" / "demo" / "jupyterhub.log"),
                        help="the hub's log, to count its spawns")
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
    results["start_by"] = {}
    lock = threading.Lock()
    names = [f"{args.prefix}{i:03d}" for i in range(1, args.students + 1)]
    t0 = time.monotonic()
    print(f"{args.students} students, one every {args.ramp:g} s, flavor {args.flavor}, "
          f"hub {args.hub_url}", flush=True)
    barrier = HoldBarrier(args.students, args.hold) if args.hold is not None else None
    log_offset = _size(args.hub_log)
    load = LoadWatch()
    with ThreadPoolExecutor(max_workers=args.students) as pool:
        futures = []
        for name in names:
            futures.append(pool.submit(run_student, args, name, results, lock, barrier))
            time.sleep(args.ramp)
        for f in futures:
            f.result()
    wall = time.monotonic() - t0
    load.stop()

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
    starts = results["start"]
    ok = sorted(t for good, t, _ in starts if good)
    by_arrival = [(who, t) for who, (good, t, _) in sorted(results["start_by"].items())
                  if good]
    if ok:
        print(f"\nclick to JupyterLab: first student {by_arrival[0][1]:.1f} s, median "
              f"{statistics.median(ok):.1f} s, last student {by_arrival[-1][1]:.1f} s "
              f"(fastest {ok[0]:.1f} s, slowest {ok[-1]:.1f} s)")
    spawns = _count_spawns(args.hub_log, log_offset)
    print(f"spawns the hub made: {spawns if spawns is not None else '? (no hub log)'} "
          f"for {args.students} students")
    print(f"machine: {os.cpu_count()} cores; load average {load.describe()}")
    if results["retried"]:
        print(f"starts that failed and were clicked again: {len(results['retried'])}")
        for error, n in collections.Counter(results["retried"]).most_common(5):
            print(f"  {n}: {error[:200]}")
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
