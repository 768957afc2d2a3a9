"""How long `make demo` takes from a fresh clone (cold) and again in the same
clone (warm), until a student can log in and until a first server answers.

Clones this repository into ``--clone`` (a fresh directory: nothing of the
clone's ``.cache`` exists, so the hub's venv, configurable-http-proxy, the
local cloud's venvs and the notebook image are all made by the run), then, for
the cold run and ``--warm`` warm runs:

- starts `make demo` in the clone and times it until the hub's login page
  answers on ``http://127.0.0.1:8000`` ("ready to log in");
- logs in as a new user with the demo's password (the form, as a browser does)
  and starts the default server through the hub's own spawn page, timing until
  the user's JupyterLab answers through the proxy ("first server");
- stops it all with `make demo-down` and times that too.

It prints each phase per run and the cold/warm ratio.  What the machine already
has outside the clone stays: Debian's packages (Docker Engine, the registry),
uv's and npm's download caches; so "cold" here is a fresh clone on a machine
that ran the project before, the case of every CI run.  It needs the network
(the cold installs), the machine's own namespace and the demo's ports free::

    .venv/bin/python benchmarks/demo_start.py --clone /tmp/demo-cold --warm 1
"""

import argparse
import os
import re
import subprocess
import sys
import time

import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUB = "http://127.0.0.1:8000"
PASSWORD = "demo-password"


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout} s waiting for {what}")


def login_page_answers():
    return requests.get(f"{HUB}/hub/login", timeout=5).status_code == 200


def first_server(user):
    """Log in through the form and start the default server as a browser does."""
    s = requests.Session()
    page = s.get(f"{HUB}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    data = {"username": user, "password": PASSWORD}
    if xsrf:
        data["_xsrf"] = xsrf.group(1)
    r = s.post(f"{HUB}/hub/login?next=", data=data, timeout=30, allow_redirects=False)
    if r.status_code != 302:
        raise SystemExit(f"login as {user}: {r.status_code} {r.text[:300]}")
    # the spawn page starts the server (the demo has a flavors form: its default)
    s.get(f"{HUB}/hub/spawn/{user}", timeout=60)
    s.post(f"{HUB}/hub/spawn/{user}", data={"_xsrf": s.cookies.get("_xsrf", "")},
           timeout=300)
    # JupyterLab's page through the proxy, after the hub's OAuth redirects (while
    # the server starts, the same URL ends on the hub's pending page instead)
    def lab_answers():
        r = s.get(f"{HUB}/user/{user}/lab", timeout=30)
        return r.status_code == 200 and r.url.startswith(f"{HUB}/user/{user}/")

    wait(lab_answers, 600, f"{user}'s JupyterLab to answer through the proxy")


def one_run(clone, label, log):
    times = {}
    t0 = time.monotonic()
    demo = subprocess.Popen(["make", "demo"], cwd=clone, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait(lambda: demo.poll() is None and login_page_answers(), 3600,
             "the demo hub's login page")
        times["ready to log in"] = time.monotonic() - t0
        t1 = time.monotonic()
        first_server(f"bench-{label}")
        times["first server (login to JupyterLab answering)"] = time.monotonic() - t1
    finally:
        t2 = time.monotonic()
        subprocess.run(["make", "demo-down"], cwd=clone, stdout=log, stderr=subprocess.STDOUT)
        times["make demo-down"] = time.monotonic() - t2
        try:
            demo.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, 9)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clone", required=True, help="a directory that does not exist yet")
    parser.add_argument("--warm", type=int, default=1, help="warm runs after the cold one")
    args = parser.parse_args(argv)
    if os.path.exists(args.clone):
        raise SystemExit(f"{args.clone} exists: the cold run needs a fresh clone")
    subprocess.run(["git", "clone", "-q", REPO, args.clone], check=True)
    log_path = os.path.join(args.clone, "demo-start.log")
    runs = []
    with open(log_path, "ab") as log:
        for i in range(1 + args.warm):
            label = "cold" if i == 0 else f"warm{i}"
            times = one_run(args.clone, label, log)
            runs.append((label, times))
            print(f"{label}: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()),
                  flush=True)
    load = open("/proc/loadavg").read().split()[:3]
    print(f"\n`make demo` from a fresh clone (load average now {' '.join(load)}; "
          f"log {log_path})")
    phases = list(runs[0][1])
    print(f"  {'phase':48}" + "".join(f"{label:>10}" for label, _ in runs))
    for phase in phases:
        print(f"  {phase:48}" + "".join(f"{t.get(phase, 0):>9.1f}s" for _, t in runs))
    if len(runs) > 1:
        cold, warm = runs[0][1]["ready to log in"], runs[1][1]["ready to log in"]
        print(f"  ready to log in, cold / warm: {cold / warm:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
