"""A burst of concurrent spawns and stops through a real hub, with faults.

The hub talks to Keystone, Zun and Cinder through ``devstack/fault_proxy.py``
(its clouds.yaml names the proxy's Keystone; the proxy rewrites the catalog, so
every Zun and Cinder call passes the proxy), which answers 500/503, delays,
resets, loses answers or answers 502/504 after doing the work for a fraction of
the calls.  Users start a default and a named server (one shared home volume),
wait for each and stop it, ``concurrency`` users at a time; the hub process is
killed once mid-burst (SIGKILL, no clean-up) and started again.  Afterwards,
with the faults off, it counts:

- spawns that succeeded, and those that failed with a clear message (what the
  user sees on the spawn page) or without one;
- containers that no server owns after the burst: in Zun with this hub's label,
  but named in no spawner's state in the hub's database;
- containers left at the end: every server stopped and the hub's clean-up given
  its time (JANITOR_TIME), any container of this hub still in Zun (one a state
  still lists for removal counts too);
- home volumes lost (one a successful spawn used that is gone or was replaced)
  or duplicated (two for one user);
- the hub's worst event-loop lag (JupyterHub's own measurement, logged from
  0.1 s up).

Run by ``tests/e2e/test_burst_e2e.py`` (20 spawns, part of ``make e2e``), or
alone at any size (``make burst BURST_SPAWNS=200``), which is::

    .venv/bin/python -m tests.e2e.burst --spawns 200 --concurrency 20
"""

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
import yaml

from .conftest import REPO, HubProcess, docker_facts_beside, free_port, wait_for

FAULT_PROXY = REPO / "devstack" / "fault_proxy.py"
UPSTREAMS = {
    "keystone": "http://127.0.0.1:5000",
    "zun": "http://127.0.0.1:9517",
    "cinder": "http://127.0.0.1:8776",
}
#: Seconds the hub's own clean-up (a poll, the janitor's retries with backoff up
#: to its 60 s) gets after every server stopped, before what is left is counted.
JANITOR_TIME = 90
LAG_RE = re.compile(r"Event loop was unresponsive for at least ([0-9.]+)s")
LAG_THRESHOLD = 0.1
#: What a failure message must not look like to count as clear: Python's own
#: words for an unhandled error, or JupyterHub's bare "Spawn failed".
UNCLEAR_RE = re.compile(
    r"Traceback|object has no attribute|NoneType|HTTPConnectionPool|Max retries"
    r"|\[Errno|\w+Error\(|\b(Key|Type|Value|Attribute|Runtime|Index|Name)Error\b"
    r"|CancelledError|Exception\b|^Spawn failed:?\s*$"
)


def clear_message(message):
    text = (message or "").strip()
    return len(text) >= 20 and not UNCLEAR_RE.search(text)


class FaultProxy:
    """``devstack/fault_proxy.py`` in front of Keystone, Zun and Cinder."""

    def __init__(self, workdir, rate, seed):
        self.ports = {name: free_port() for name in UPSTREAMS}
        routes = [f"--route={n}={self.ports[n]}={u}" for n, u in UPSTREAMS.items()]
        self.log = open(workdir / "fault-proxy.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(FAULT_PROXY), *routes, "--rate", str(rate),
             "--seed", str(seed), "--faulty", "zun", "--faulty", "cinder"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.control = f"http://127.0.0.1:{self.ports['zun']}/__faults__"
        wait_for(self._up, 10, 0.1, "the fault proxy")

    def _up(self):
        try:
            return requests.get(self.control, timeout=1).ok
        except requests.RequestException:
            return False

    @property
    def keystone(self):
        return f"http://127.0.0.1:{self.ports['keystone']}/v3"

    def report(self):
        return requests.get(self.control, timeout=5).json()

    def set_rate(self, rate):
        requests.post(self.control, json={"rate": rate}, timeout=5).raise_for_status()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def proxied_clouds_yaml(cloud, proxy, path):
    """The cloud's clouds.yaml with the hub's cloud logging in through the proxy."""
    config = yaml.safe_load(cloud.clouds_yaml.read_text())
    config["clouds"][cloud.cloud]["auth"]["auth_url"] = proxy.keystone
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    docker_facts_beside(cloud, path)
    return path


class BurstHub(HubProcess):
    """A hub whose cloud calls go through the fault proxy."""

    def __init__(self, workdir, cloud, clouds_yaml, extra_config=""):
        self.hub_clouds_yaml = clouds_yaml
        super().__init__(workdir, cloud, extra_config)
        self.generation = 0

    def environment(self):
        env = super().environment()
        env["OS_CLIENT_CONFIG_FILE"] = str(self.hub_clouds_yaml)
        return env

    def start(self, timeout=120):
        super().start(timeout)
        self.generation += 1

    def kill(self):
        """SIGKILL the hub alone (its proxy and the servers go on)."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def api(self, method, path, **kwargs):
        """The hub's REST API; waits out the hub's own restart."""
        deadline = time.monotonic() + 180
        while True:
            try:
                r = super().api(method, path, **kwargs)
                # the proxy answers 503 (or 502) while the hub behind it is down,
                # and its own plain 404 while the restarting hub has not yet put
                # back its route (the hub's own 404s are JSON)
                if r.status_code not in (502, 503) and not (
                        r.status_code == 404 and "json" not in r.headers.get("Content-Type", "")):
                    return r
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                return super().api(method, path, **kwargs)
            time.sleep(1)

    def failure_message(self, user, server):
        """What the spawn page says about a failed spawn (the progress stream)."""
        path = f"/users/{user}/servers/{server}/progress" if server else (
            f"/users/{user}/server/progress")
        try:
            r = self.api("GET", path, stream=True)
            for line in r.iter_lines():
                # (bytes: an event stream names no charset; JupyterHub's is UTF-8)
                line = line.decode("utf-8", "replace")
                if line and line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event.get("failed") or event.get("ready"):
                        return event.get("message") or ""
        except (requests.RequestException, ValueError) as e:
            return f"(no progress stream: {e})"
        return ""

    def spawner_states(self):
        """``{(user, server): state}`` straight from the hub's database."""
        db = sqlite3.connect(f"file:{self.workdir}/jupyterhub.sqlite?mode=ro", uri=True,
                             timeout=30)
        try:
            rows = db.execute(
                "SELECT users.name, spawners.name, spawners.state FROM spawners "
                "JOIN users ON users.id = spawners.user_id"
            ).fetchall()
        finally:
            db.close()
        return {(u, s or ""): json.loads(state) if state else {} for u, s, state in rows}

    def worst_lag(self):
        lags = [float(m.group(1)) for m in LAG_RE.finditer(
            self.log_path.read_text(errors="replace"))]
        return max(lags) if lags else None


class Burst:
    def __init__(self, hub, proxy, spawns, concurrency, kill_hub=True):
        self.hub = hub
        self.proxy = proxy
        self.tasks = [(f"burst{i // 2}", "" if i % 2 == 0 else "lab") for i in range(spawns)]
        self.servers_of = {}
        for user, server in self.tasks:
            self.servers_of.setdefault(user, []).append(server)
        self.retried = 0
        self.concurrency = concurrency
        self.kill_hub = kill_hub
        self.lock = threading.Lock()
        self.started = 0
        self.outcomes = []  # (user, server, outcome, message)
        self.volumes_seen = {}  # user -> {volume ids successful spawns used}
        self.killed_at = None
        self.killer = None
        self._restarted = threading.Event()

    # -- one spawn ------------------------------------------------------------

    def _path(self, user, server):
        return f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"

    def _server(self, user, server):
        r = self.hub.api("GET", f"/users/{user}", params={"include_stopped_servers": "1"})
        if r.status_code != 200:
            return None
        return (r.json().get("servers") or {}).get(server)

    def _request_start(self, user, server):
        self.hub.ensure_user(user)
        deadline = time.monotonic() + 300
        while True:
            r = self.hub.api("POST", self._path(user, server), json={})
            if r.status_code in (201, 202):
                return True
            # "already pending"/"is pending stop": wait for the hub to settle
            if r.status_code == 400 and time.monotonic() < deadline:
                time.sleep(2)
                continue
            return r

    def _wait_settled(self, user, server, timeout=400):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self._server(user, server)
            if s is not None and s.get("ready"):
                return "ready", s
            if s is None or not s.get("pending"):
                # give the hub a moment: right after the POST it may not show yet
                time.sleep(1)
                s2 = self._server(user, server)
                if s2 is not None and s2.get("ready"):
                    return "ready", s2
                if s2 is None or not s2.get("pending"):
                    return "failed", s2
            time.sleep(1)
        return "timeout", None

    def _stop(self, user, server):
        r = self.hub.api("DELETE", self._path(user, server))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            s = self._server(user, server)
            if s is None or (not s.get("ready") and not s.get("pending")):
                return r.status_code
            time.sleep(1)
        return "stop-timeout"

    def user_task(self, user):
        """A user starts and stops the default server, then the named one."""
        for server in self.servers_of[user]:
            self.one(user, server)

    def one(self, user, server):
        with self.lock:
            self.started += 1
            n = self.started
        if self.kill_hub and n == len(self.tasks) // 2 + 1:
            self.killer = threading.Thread(target=self._kill_and_restart, daemon=True)
            self.killer.start()
        for attempt in (1, 2):
            generation = self.hub.generation
            answer = self._request_start(user, server)
            if answer is not True:
                # a spawn that fails quickly is the POST's own answer
                try:
                    message = answer.json()["message"]
                except (ValueError, KeyError, TypeError):
                    message = f"{answer.status_code} {answer.text[:200]}"
                outcome = "failed"
            else:
                outcome, _ = self._wait_settled(user, server)
                message = ""
            if outcome == "ready":
                state = self.hub.spawner_states().get((user, server), {})
                volume = state.get("home_volume_id")
                if volume:
                    with self.lock:
                        self.volumes_seen.setdefault(user, set()).add(volume)
                self._stop(user, server)
                return self._record(user, server, "ok", "")
            if outcome == "timeout":
                message = "no answer within 400 s"
            elif not message:
                message = self.hub.failure_message(user, server)
            # the hub died under this spawn (or is down): the user presses start
            # again once the hub is back
            interrupted = self.hub.generation != generation or (
                self.killed_at is not None and not self._restarted.is_set())
            if interrupted and attempt == 1:
                self._restarted.wait(300)
                with self.lock:
                    self.retried += 1
                continue
            return self._record(user, server, "failed", message)

    def _record(self, user, server, outcome, message):
        with self.lock:
            self.outcomes.append((user, server, outcome, message))

    def _kill_and_restart(self):
        time.sleep(2)  # let the latest spawns get into their cloud calls
        self.killed_at = time.monotonic()
        self.hub.kill()
        time.sleep(1)
        self.hub.start()
        self._restarted.set()

    # -- the whole burst and its accounting -------------------------------------------

    def run(self):
        began = time.monotonic()
        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(self.user_task, self.servers_of))
        self.burst_seconds = time.monotonic() - began
        self.faults = self.proxy.report()
        self.proxy.set_rate(0.0)
        return self.account()

    def orphans(self):
        """Containers of this hub that no spawner's state names."""
        owned = json.dumps(list(self.hub.spawner_states().values()))
        found = self.hub.cloud.containers(**{"hub.jupyter.org/hub": self.hub.hub_id})
        return [c for c in found if c["uuid"] not in owned]

    def containers_left(self):
        """This hub's containers still in Zun once the janitor has had its time."""
        label = {"hub.jupyter.org/hub": self.hub.hub_id}
        deadline = time.monotonic() + JANITOR_TIME
        while True:
            found = self.hub.cloud.containers(**label)
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(3)

    def home_volumes(self):
        storage = self.hub.cloud.block_storage
        wanted = {"hub.jupyter.org/hub": self.hub.hub_id}
        by_user = {}
        for v in storage.volumes(details=True, properties=json.dumps(wanted)):
            meta = v.metadata or {}
            if meta.get("hub.jupyter.org/hub") == self.hub.hub_id:
                by_user.setdefault(meta.get("hub.jupyter.org/user"), []).append(v.id)
        return by_user

    def account(self):
        # the hub's own clean-up (a poll, a retried delete) gets a moment
        time.sleep(15)
        orphans_after_burst = self.orphans()
        for (user, server), _ in self.hub.spawner_states().items():
            model = self._server(user, server)
            if model and (model.get("ready") or model.get("pending")):
                self._stop(user, server)
        containers_left = self.containers_left()
        volumes = self.home_volumes()
        duplicated = sum(len(ids) - 1 for ids in volumes.values() if len(ids) > 1)
        existing = {vid for ids in volumes.values() for vid in ids}
        # a home a successful spawn used that is gone (a replaced one that still
        # exists is a duplicate)
        lost = sum(len(seen - existing) for seen in self.volumes_seen.values())
        ok = [o for o in self.outcomes if o[2] == "ok"]
        failed = [o for o in self.outcomes if o[2] != "ok"]
        clear = [o for o in failed if clear_message(o[3])]
        return {
            "spawns": len(self.tasks),
            "concurrency": self.concurrency,
            "succeeded": len(ok),
            "failed_clear": len(clear),
            "failed_unclear": len(failed) - len(clear),
            "messages": sorted({o[3] for o in failed}),
            "unclear_messages": sorted({o[3] for o in failed if not clear_message(o[3])}),
            "orphans_after_burst": [c["uuid"] for c in orphans_after_burst],
            "containers_left": [f"{c['uuid']} {c['name']} {c['status']}"
                                for c in containers_left],
            "volumes_duplicated": duplicated,
            "volumes_lost": lost,
            "worst_event_loop_lag_s": self.hub.worst_lag(),
            "hub_killed": self.killed_at is not None,
            "retried_after_hub_restart": self.retried,
            "faults": {k: self.faults[k] for k in ("rate", "seed", "calls", "injected")},
            "burst_seconds": round(self.burst_seconds, 1),
        }


def format_report(r):
    lag = r["worst_event_loop_lag_s"]
    lines = [
        f"burst: {r['spawns']} spawns, {r['concurrency']} at a time, "
        f"faults at {r['faults']['rate']:.0%} of Zun/Cinder calls (seed "
        f"{r['faults']['seed']}): {r['faults']['injected']} of {r['faults']['calls']} "
        f"calls; hub killed once: {r['hub_killed']} ({r['retried_after_hub_restart']} "
        f"spawns it interrupted started again); {r['burst_seconds']} s",
        f"  spawns succeeded:                  {r['succeeded']}",
        f"  failed with a clear message:       {r['failed_clear']}",
        f"  failed without one:                {r['failed_unclear']}",
        f"  containers no server owns (burst): {len(r['orphans_after_burst'])}",
        f"  containers left (all stopped):     {len(r['containers_left'])}",
        f"  home volumes lost:                 {r['volumes_lost']}",
        f"  home volumes duplicated:           {r['volumes_duplicated']}",
        "  worst event-loop lag:              "
        + (f"{lag:.2f} s" if lag is not None else f"< {LAG_THRESHOLD} s"),
    ]
    for message in r["messages"]:
        lines.append(f"    failure: {message[:300]}")
    return "\n".join(lines)


HUB_CONFIG = f"""
c.ZunSpawner.home_volume_size = 1
c.ZunSpawner.start_timeout = 240
# Ten JupyterLab servers starting at once on two cores can take over a minute to
# answer; the burst measures the cloud's faults, not the machine's speed.
c.ZunSpawner.http_timeout = 180
c.JupyterHub.init_spawners_timeout = 1
c.PeriodicMetricsCollector.event_loop_interval_log_threshold = {LAG_THRESHOLD}
"""


def run_burst(cloud, workdir, spawns=20, concurrency=10, rate=0.1, seed=8, kill_hub=True):
    """Set up the proxy and the hub, run the burst, tidy up; returns the report."""
    workdir.mkdir(parents=True, exist_ok=True)
    proxy = FaultProxy(workdir, rate, seed)
    hub = burst = None
    try:
        clouds_yaml = proxied_clouds_yaml(cloud, proxy, workdir / "clouds-proxied.yaml")
        hub = BurstHub(workdir / "hub", cloud, clouds_yaml, HUB_CONFIG)
        hub.start()
        burst = Burst(hub, proxy, spawns, concurrency, kill_hub)
        report = burst.run()
        (workdir / "burst-report.json").write_text(json.dumps(report, indent=1))
        return report
    finally:
        if burst is not None and burst.killer is not None:
            burst.killer.join(300)  # a failed burst must not leave a restarted hub
        if hub is not None:
            proxy.set_rate(0.0)
            hub.shutdown()
        proxy.stop()


def main(argv=None):
    """The burst at any size; brings the local cloud up when it is not."""
    import pathlib

    from .conftest import CLOUD_DIR, LOCAL_CLOUD, LocalCloud

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spawns", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--workdir", default=str(REPO / ".cache" / "burst"))
    args = parser.parse_args(argv)
    # a fresh hub database and logs: the figures are this run's alone
    shutil.rmtree(args.workdir, ignore_errors=True)
    was_up = subprocess.run([str(LOCAL_CLOUD), "status"], capture_output=True).returncode == 0
    if not was_up:
        subprocess.run([str(LOCAL_CLOUD), "up"], check=True)
    cloud = LocalCloud(CLOUD_DIR / "clouds.yaml")
    try:
        report = run_burst(cloud, pathlib.Path(args.workdir), args.spawns,
                           args.concurrency, args.rate, args.seed)
    finally:
        cloud.close()
        if not was_up and not os.environ.get("LOCAL_CLOUD_KEEP"):
            subprocess.run([str(LOCAL_CLOUD), "down"], check=False)
    print(format_report(report))
    print(f"  (logs and burst-report.json: {args.workdir})")
    ok = not (report["failed_unclear"] or report["orphans_after_burst"]
              or report["containers_left"] or report["volumes_lost"]
              or report["volumes_duplicated"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
