"""How many small notebook servers the local cloud's Docker path holds at once, and
what each idle one costs in memory.

Through Zun's API as the hub's user (python-zunclient), ``--servers`` containers
of the image's own command (JupyterLab, idle) at ``--cpu``/``--memory`` (the
smallest flavor, 0.5 vCPU / 512 MiB), ``--parallel`` creates at a time over both
compute hosts; each counts as held once Zun says Running and its JupyterLab
answers on its address (``GET /api``).  With ``--kernel`` each server also starts
one Python kernel (as a student's first cell does).  After ``--idle`` seconds it
reads:

- memory per server as Docker counts it (the container's memory cgroup usage less
  inactive file cache), median/min/max;
- the machine's cost per server: the drop of ``MemAvailable`` from before the first
  create, over the servers held (it includes containerd's shims, Docker's and
  Zun's bookkeeping);
- how many more would fit by memory at that cost (leaving 512 MiB available), and
  Placement's room for this flavor;

then deletes every container it made, whatever happened, and prints the figures
(the process driver's, measured the same day of issue 13 with a kernel each: 100
held, 106 MiB each charged to their cgroups).  Run it in the cloud's network
namespace (the servers' addresses are on its bridge)::

    nsenter --net=/run/netns/NAME .venv/bin/python benchmarks/docker_capacity.py \\
      --servers 100 --kernel
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

REPO = pathlib.Path(__file__).resolve().parents[1]
CLOUD_DIR = pathlib.Path(os.environ.get("MAGNUM_CLOUD_DIR", REPO / ".cache" / "local-cloud"))
KEEP_AVAILABLE_MIB = 512


def zunclient():
    import openstack.config
    from zunclient import client

    region = openstack.config.OpenStackConfig(
        config_files=[str(CLOUD_DIR / "clouds.yaml")]).get_one(cloud="local")
    return client.Client("1.40", session=region.get_session(), region_name="RegionOne")


def mem_available_mib():
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def docker(cloud, host, *args):
    sock = f"unix://{cloud['docker_dir']}/{host}/docker.sock"
    return subprocess.run(["/usr/bin/docker", "-H", sock, *args], capture_output=True,
                          text=True, timeout=120)


def docker_id(cloud, uuid_):
    """(host, Docker's id) of Zun's container (the hub's user is not shown its host)."""
    for host in cloud["hosts"]:
        cid = docker(cloud, host, "ps", "-q", "--no-trunc", "--filter",
                     f"name=zun-{uuid_}").stdout.strip()
        if cid:
            return host, cid
    raise ValueError(f"no Docker container for {uuid_}")


def cgroup_mib(cid):
    """Docker's figure: usage - total_inactive_file of the container's memory cgroup."""
    base = pathlib.Path("/sys/fs/cgroup/memory/docker") / cid
    usage = int((base / "memory.usage_in_bytes").read_text())
    stat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
    return (usage - int(stat.get("total_inactive_file", 0))) / 2**20


class Fill:
    def __init__(self, zun, cloud, args):
        self.zun, self.cloud, self.args = zun, cloud, args
        self.lock = threading.Lock()
        self.made = []  # uuids, whatever became of them
        self.held = []  # (uuid, host, seconds create -> answering)
        self.failed = []  # (name, reason)

    def one(self, i):
        a = self.args
        name = f"capacity-{uuid.uuid4().hex[:6]}-{i}"
        t0 = time.monotonic()
        try:
            c = self.zun.containers.run(name=name, image=self.cloud["image"], cpu=a.cpu,
                                        memory=str(a.memory))
        except Exception as e:  # noqa: BLE001 - a refused create is a figure too
            with self.lock:
                self.failed.append((name, f"create: {e}"))
            return
        with self.lock:
            self.made.append(c.uuid)
        deadline = t0 + a.timeout
        while True:
            c = self.zun.containers.get(c.uuid)
            if c.status == "Running":
                break
            if c.status in ("Error", "Stopped") or time.monotonic() > deadline:
                with self.lock:
                    self.failed.append((name, f"{c.status}: {c.status_reason}"))
                return
            time.sleep(1)
        ip = next(a["addr"] for addrs in (c.addresses or {}).values() for a in addrs)
        url = f"http://{ip}:8888"
        while True:
            try:
                if requests.get(f"{url}/api", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                with self.lock:
                    self.failed.append((name, "Running but JupyterLab not answering"))
                return
            time.sleep(1)
        if a.kernel:
            # (no token: the image runs JupyterLab with --ServerApp.token=)
            r = requests.post(f"{url}/api/kernels", json={}, timeout=60,
                              cookies={"_xsrf": "capacity"},
                              headers={"X-XSRFToken": "capacity"})
            if r.status_code != 201:
                with self.lock:
                    self.failed.append((name, f"kernel: {r.status_code} {r.text[:100]}"))
                return
        with self.lock:
            self.held.append((c.uuid, time.monotonic() - t0))

    def delete_all(self):
        def delete(uid):
            try:
                self.zun.containers.delete(uid, stop=True)
            except Exception as e:  # noqa: BLE001 - report, go on deleting
                print(f"delete {uid}: {e}", file=sys.stderr)

        with ThreadPoolExecutor(self.args.parallel) as pool:
            list(pool.map(delete, self.made))


def placement_room(memory_mib, cpu):
    """Servers of this flavor Placement has room for (Zun claims whole VCPUs)."""
    conf = CLOUD_DIR / "etc" / "zun" / "zun.conf"
    import configparser

    cp = configparser.RawConfigParser(strict=False)
    cp.read(conf)
    cpu_ratio = float(cp.get("compute", "cpu_allocation_ratio", fallback="16"))
    ram_ratio = float(cp.get("compute", "ram_allocation_ratio", fallback="1.5"))
    hosts = len(json.loads((CLOUD_DIR / "docker.json").read_text())["hosts"])
    total_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    vcpus = os.cpu_count()
    by_cpu = hosts * int(vcpus * cpu_ratio) // max(1, -(-int(cpu * 100) // 100))
    by_ram = hosts * int((total_mib - 512) * ram_ratio) // memory_mib
    return min(by_cpu, by_ram), by_cpu, by_ram


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=8, help="creates at a time")
    parser.add_argument("--cpu", type=float, default=0.5)
    parser.add_argument("--memory", type=int, default=512, help="MiB")
    parser.add_argument("--kernel", action="store_true", help="one kernel per server")
    parser.add_argument("--idle", type=float, default=30, help="seconds idle before measuring")
    parser.add_argument("--timeout", type=float, default=600, help="per server")
    args = parser.parse_args()
    cloud = json.loads((CLOUD_DIR / "docker.json").read_text())
    zun = zunclient()
    fill = Fill(zun, cloud, args)
    before = after = mem_available_mib()
    load, mem, by_host, filled = os.getloadavg(), [], {}, 0.0
    began = time.monotonic()
    try:
        with ThreadPoolExecutor(args.parallel) as pool:
            list(pool.map(fill.one, range(args.servers)))
        filled = time.monotonic() - began
        time.sleep(args.idle)
        after = mem_available_mib()
        load = os.getloadavg()
        for uid, _ in fill.held:
            try:
                host, cid = docker_id(cloud, uid)
                by_host[host] = by_host.get(host, 0) + 1
                mem.append(cgroup_mib(cid))
            except (OSError, ValueError) as e:
                print(f"memory of {uid}: {e}", file=sys.stderr)
    finally:
        t_del = time.monotonic()
        fill.delete_all()
        deleted = time.monotonic() - t_del
    held = len(fill.held)
    print(f"servers asked for: {args.servers} ({args.cpu} vCPU / {args.memory} MiB, "
          f"{'one kernel each' if args.kernel else 'no kernel'}), {args.parallel} "
          f"creates at a time")
    print(f"held at once (Running and answering): {held}; failed: {len(fill.failed)}")
    for reason in sorted({r for _, r in fill.failed})[:5]:
        print(f"  failure: {reason[:200]}")
    if held:
        took = [t for _, t in fill.held]
        print(f"create -> answering: median {statistics.median(took):.1f} s, max "
              f"{max(took):.1f} s; all {held} in {filled:.0f} s")
        print("per host: " + ", ".join(f"{h} {n}" for h, n in sorted(by_host.items())))
    if mem:
        print(f"memory per idle server (its cgroup, as Docker counts it) after "
              f"{args.idle:.0f} s: median {statistics.median(mem):.0f} MiB, min "
              f"{min(mem):.0f}, max {max(mem):.0f}, sum {sum(mem):,.0f} MiB")
    if held:
        per = (before - after) / held
        more = max(0, int((after - KEEP_AVAILABLE_MIB) / per)) if per > 0 else 0
        print(f"MemAvailable: {before:,.0f} MiB before, {after:,.0f} MiB with {held} "
              f"servers: {per:.0f} MiB per server for the machine")
        print(f"by memory, about {more} more would fit ({held + more} in all, leaving "
              f"{KEEP_AVAILABLE_MIB} MiB)")
    room, by_cpu, by_ram = placement_room(args.memory, args.cpu)
    print(f"Placement's room for this flavor: {room} (VCPU {by_cpu}, MEMORY_MB {by_ram})")
    print(f"load average with them idle: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
          f"deleting all took {deleted:.0f} s")
    return 0 if held == args.servers else 1


if __name__ == "__main__":
    sys.exit(main())
