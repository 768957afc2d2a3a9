"""Where a spawn's time goes: the hub's own time, Cinder (the home volume), Zun's
create -> Running, and the notebook server coming to answer.

Starts a real hub (the e2e harness's, etc/local_jupyterhub_config.py) on the
local cloud that is up, starts ``--servers`` servers one after the other through
the hub's REST API (click -> the hub says ready), stops each, and splits every
spawn with the timestamps of the spawner's own phase lines in the hub's log
(``spawn phase=... step=...``):

- Cinder: the first home-folder step -> "Your home folder is ready";
- Zun: "Asking the cloud for a server" (the create is sent) -> "Your server is
  running" (the spawner saw Running; includes a pull when the host lacks the image);
- answering: Running -> "Your server is answering";
- the hub's own: everything else of click -> ready (the REST call, the spawner's
  code, JupyterHub's proxy and bookkeeping, the harness's 1 s polls of the hub).

    nsenter --net=/run/netns/NAME .venv/bin/python benchmarks/spawn_split.py --servers 4

The first spawn after ``up`` pulls the image onto a host (each host pulls once);
``--warmup`` spawns are made first and not counted.
"""

import argparse
import datetime
import pathlib
import re
import statistics
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.conftest import CLOUD_DIR, HubProcess, LocalCloud  # noqa: E402

LINE = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) .*? spawn (phase=.*)$")


def phases(log_text, user):
    """[(datetime, phase, step)] of one user's spawn lines, in order."""
    out = []
    for line in log_text.splitlines():
        m = LINE.match(line)
        if not m or f" user={user} " not in f" {m.group(2)} ":
            continue
        when = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
        phase = re.search(r"phase=(\S+)", m.group(2)).group(1)
        step = re.search(r'step=("(?:[^"\\]|\\.)*"|\S+)', m.group(2))
        out.append((when, phase, step.group(1).strip('"') if step else ""))
    return out


def split(lines, total):
    def first(pred):
        return next((t for t, _, s in lines if pred(s)), None)

    vol_start = first(lambda s: s.startswith(("Creating your home folder", "Your home folder is")))
    vol_ready = first(lambda s: s == "Your home folder is ready")
    asking = first(lambda s: s == "Asking the cloud for a server")
    running = first(lambda s: s == "Your server is running")
    answering = first(lambda s: s == "Your server is answering; opening it")
    if not (asking and running and answering):
        raise SystemExit(f"missing phase lines in the hub's log: {lines}")
    cinder = (vol_ready - vol_start).total_seconds() if vol_start and vol_ready else 0.0
    zun = (running - asking).total_seconds()
    answer = (answering - running).total_seconds()
    return {"total": total, "cinder": cinder, "zun": zun, "answering": answer,
            "hub": total - cinder - zun - answer}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--servers", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=2,
                    help="spawns first, not counted (image pulls onto each host)")
    args = ap.parse_args()
    cloud = LocalCloud(CLOUD_DIR / "clouds.yaml")
    hub = HubProcess(tempfile.mkdtemp(prefix="spawn-split-"), cloud,
                     "c.ZunSpawner.start_timeout = 300\n")
    hub.start()
    rows = []
    try:
        for i in range(args.warmup + args.servers):
            user = f"split{i}"
            t0 = time.monotonic()
            hub.start_server(user, timeout=300)
            total = time.monotonic() - t0
            if i >= args.warmup:
                rows.append(split(phases(hub.log_path.read_text(), user), total))
            hub.stop_server(user)
    finally:
        leaks = hub.shutdown()
        cloud.close()
    keys = ["total", "hub", "cinder", "zun", "answering"]
    print(f"{'spawn':>5} " + " ".join(f"{k:>10}" for k in keys) + "   hub share")
    for n, r in enumerate(rows, 1):
        print(f"{n:>5} " + " ".join(f"{r[k]:>9.2f}s" for k in keys)
              + f"   {100 * r['hub'] / r['total']:.1f} %")
    med = {k: statistics.median(r[k] for r in rows) for k in keys}
    print("  med " + " ".join(f"{med[k]:>9.2f}s" for k in keys)
          + f"   {100 * med['hub'] / med['total']:.1f} %")
    if leaks:
        print("left in the cloud (removed):", "; ".join(leaks))


if __name__ == "__main__":
    main()
