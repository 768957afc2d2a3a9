"""``make e2e``: the Zun, the Magnum and upstream Zun's API tests side by side.

Each stream gets its own local cloud (its own ``MAGNUM_CLOUD_DIR``) in its own
network namespace, so that both clouds listen on the same loopback ports
without meeting.  The suite spends most of its time waiting (a container
starting, a cluster converging, a poll interval), so the streams on the 2
cores of a CI machine take little more than the longest of them.  The third,
``tempest``, runs zun-tempest-plugin (devstack/zun-tempest) on a Zun cloud of
its own: tempest makes projects, users and networks of its own there.

Per stream:

1. ``devstack/local-cloud install`` in the machine's own namespace (apt, the
   venvs, and whatever the stream's cloud builds once: the notebook image, the
   Kubernetes binaries; the tempest stream's ``devstack/zun-tempest install``
   too): the namespaces have no route out;
2. a network namespace with only ``lo`` up, and pytest in it
   (``-m localcloud``); the ``local_cloud`` fixture brings the cloud up and
   down there.

With ``LOCAL_CLOUD_KEEP=1`` the clouds and their namespaces stay for the next
run (``ip netns exec ms-e2e-<stream>-<clone> ...`` reaches them).

Each line of a stream's output is printed with its name in front, and kept in
``.cache/e2e/<stream>.log``; the end says where the time went.  The run fails
when a stream fails (a stream whose every test was filtered out by ``-k`` does
not).

    .venv/bin/python -m tests.e2e.streams [--streams zun,magnum] [pytest args]

A pytest argument naming a test file or directory runs only that (in the
stream it belongs to: a path with "magnum" in its name runs in the Magnum
stream, one with "tempest" in the tempest stream); other arguments (``-k``,
``-x``, ``-s``) go to every stream.
"""

import argparse
import hashlib
import os
import pathlib
import subprocess
import sys
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
LOCAL_CLOUD = REPO / "devstack" / "local-cloud"
ZUN_TEMPEST = REPO / "devstack" / "zun-tempest"
LOGS = REPO / ".cache" / "e2e"
E2E = REPO / "tests" / "e2e"
#: Runs last in each stream: what that stream's tests left in its cloud.
LAST = E2E / "test_project_left_as_found_e2e.py"
#: pytest's exit status when no test was selected.
NO_TESTS = 5


def magnum_paths():
    return sorted(E2E.glob("test_magnum_*.py")) + [REPO / "devstack" / "magnum_local_driver" / "tests"]


def tempest_paths():
    return sorted(E2E.glob("test_*tempest*.py"))


def zun_paths():
    others = set(magnum_paths()) | set(tempest_paths())
    return [p for p in sorted(E2E.glob("test_*.py")) if p not in others]


STREAMS = {
    # the Zun tests' cloud has no Magnum: it starts faster and needs no Kubernetes build
    "zun": {"paths": zun_paths, "env": {"LOCAL_CLOUD_MAGNUM": "0"}},
    "magnum": {"paths": magnum_paths, "env": {
        "LOCAL_CLOUD_MAGNUM": "1",
        "MAGNUM_CLOUD_DIR": str(REPO / ".cache" / "local-cloud-magnum")}},
    # upstream Zun's API tests: tempest and the plugin are installed beside the
    # cloud (the namespace has no route out); the project-left-as-found check is
    # the spawner's, whose hub does not run here
    "tempest": {"paths": tempest_paths, "install": [ZUN_TEMPEST], "last": False, "env": {
        "LOCAL_CLOUD_MAGNUM": "0",
        "MAGNUM_CLOUD_DIR": str(REPO / ".cache" / "local-cloud-tempest")}},
}


def stream_of(path):
    name = pathlib.Path(path).name
    return "magnum" if "magnum" in name else "tempest" if "tempest" in name else "zun"


def split_args(args):
    """The pytest arguments naming paths (per stream), and the others."""
    chosen, rest = {}, []
    for arg in args:
        target = pathlib.Path(arg.split("::")[0])
        if not arg.startswith("-") and (REPO / target).exists():
            chosen.setdefault(stream_of(target), []).append(arg)
        else:
            rest.append(arg)
    return chosen, rest


class Job(threading.Thread):
    """A command whose output lines go out with the job's name in front."""

    def __init__(self, name, out_lock, env=None):
        super().__init__(name=name)
        self.out_lock = out_lock
        self.env = dict(os.environ, **(env or {}))
        self.log = LOGS / ("%s.log" % name)
        self.times = {}
        self.rc = None

    def say(self, line):
        with self.out_lock:
            try:
                sys.stdout.write("[%s] %s\n" % (self.name, line.rstrip("\n")))
                sys.stdout.flush()
            except OSError:
                pass  # a closed terminal must not orphan the clouds: the log has it

    def step(self, what, cmd, logfile):
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env=self.env, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in proc.stdout:
            logfile.write(line)
            logfile.flush()
            self.say(line)
        rc = proc.wait()
        self.times[what] = self.times.get(what, 0) + time.monotonic() - t0
        return rc

    def run(self):
        with open(self.log, "w") as logfile:
            try:
                self.rc = self._run(logfile)
            except Exception as e:  # a broken job must not hang the others' report
                self.say("failed: %r" % (e,))
                self.rc = 1


class Before(Job):
    """A command beside the installs that must pass before any stream's tests
    start (``make test``: the unit tests, while the clouds' builds run)."""

    def __init__(self, command, out_lock):
        super().__init__(command.split()[-1], out_lock)
        self.command = command

    def _run(self, logfile):
        return self.step("run", ["sh", "-c", self.command], logfile)


class Stream(Job):
    def __init__(self, name, paths, pytest_args, out_lock, gate=None):
        super().__init__(name, out_lock, STREAMS[name]["env"])
        self.paths = paths
        self.pytest_args = pytest_args
        self.gate = gate
        # one name per clone: a kept cloud (LOCAL_CLOUD_KEEP=1) is found again by
        # the next run, and another clone's run on the machine does not meet it
        self.netns = "ms-e2e-%s-%s" % (name, hashlib.sha256(bytes(REPO)).hexdigest()[:6])
        self.keep = bool(os.environ.get("LOCAL_CLOUD_KEEP"))
        # a lock per namespace: the clouds do not share loopback ports
        self.env["LOCAL_CLOUD_LOCK"] = "/tmp/%s.lock" % self.netns

    def _run(self, logfile):
        for script in [LOCAL_CLOUD, *STREAMS[self.name].get("install", [])]:
            rc = self.step("install", [str(script), "install"], logfile)
            if rc:
                self.say("devstack/%s install failed (rc %d); its tests did not run"
                         % (script.name, rc))
                return rc
        if self.gate is not None:
            self.gate.join()
            if self.gate.rc:
                self.say("not run: %s failed first (rc %d)" % (self.gate.name, self.gate.rc))
                return self.gate.rc
        if pathlib.Path("/run/netns", self.netns).exists() and not self.keep:
            self.leave_netns()  # a run that was killed left it
        if not pathlib.Path("/run/netns", self.netns).exists():
            subprocess.run(["ip", "netns", "add", self.netns], check=True)
        try:
            subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
            basetemp = LOGS / ("%s-tmp" % self.name)
            cmd = ["nsenter", "--net=/run/netns/%s" % self.netns, sys.executable, "-m", "pytest",
                   "-q", "-m", "localcloud", "-p", "no:cacheprovider", "--basetemp", str(basetemp),
                   *self.paths, *self.pytest_args]
            return self.step("tests", cmd, logfile)
        finally:
            if not self.keep:
                self.leave_netns()

    def leave_netns(self):
        # whatever still runs in the namespace is ours, and was not cleaned up
        pids = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True,
                              text=True).stdout.split()
        if pids:
            self.say("left running in %s, now killed: pids %s" % (self.netns, " ".join(pids)))
            subprocess.run(["kill", "-KILL", *pids], check=False)
        subprocess.run(["ip", "netns", "del", self.netns], check=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--streams", default=",".join(STREAMS),
                        help="which streams to run (comma-separated; default all: %s)"
                        % ",".join(STREAMS))
    parser.add_argument("--before", metavar="COMMAND",
                        help="a shell command run beside the installs, which must pass "
                        "before the tests start (make test: make unit)")
    opts, pytest_args = parser.parse_known_args(argv)
    if os.geteuid() != 0:
        sys.exit("make e2e needs root: network namespaces, and the local cloud's cgroups, "
                 "loop devices and Docker daemons")
    chosen, rest = split_args(pytest_args)
    names = [n for n in opts.streams.split(",") if n]
    unknown = set(names) - set(STREAMS)
    if unknown:
        sys.exit("unknown stream(s) %s: choose from %s" % (", ".join(sorted(unknown)),
                                                         ", ".join(STREAMS)))
    if chosen:
        names = [n for n in names if n in chosen]
    LOGS.mkdir(parents=True, exist_ok=True)
    out_lock = threading.Lock()
    gate = Before(opts.before, out_lock) if opts.before else None
    streams = []
    for name in names:
        if name in chosen:
            paths = chosen[name]
        else:
            paths = [str(p) for p in STREAMS[name]["paths"]() if p.exists()]
        if str(LAST) not in paths and not chosen and STREAMS[name].get("last", True):
            paths.append(str(LAST))
        streams.append(Stream(name, paths, rest, out_lock, gate))
    t0 = time.monotonic()
    for s in [gate, *streams] if gate else streams:
        s.start()
    for s in streams:
        s.join()
    if gate is not None:
        gate.join()
        streams.insert(0, gate)
    wall = time.monotonic() - t0
    print("\nend-to-end streams, side by side (%.0f s in all):" % wall)
    for s in streams:
        parts = ", ".join("%s %.0f s" % kv for kv in s.times.items())
        print("  %-7s rc %s: %s (log %s)" % (s.name, s.rc, parts, s.log.relative_to(REPO)))
    codes = [s.rc for s in streams]
    if all(rc == NO_TESTS for rc in codes):
        return NO_TESTS
    return next((rc for rc in codes if rc not in (0, NO_TESTS)), 0)


if __name__ == "__main__":
    sys.exit(main())
