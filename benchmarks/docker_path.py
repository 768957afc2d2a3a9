"""Create -> Running and memory per idle notebook server on the local cloud's
Docker path (its default), through Zun's API (python-zunclient).

Per host (zone), the first create after the image was removed from that host's
daemon (a real pull from the local registry), then ``--warm`` more creates with
the image present; each runs the image's own command (JupyterLab, idle).  After
``--idle`` seconds it reads each container's memory as Docker counts it (the
memory cgroup's usage less inactive file cache) and deletes every container it
made, whatever happens.

    nsenter --net=/run/netns/NAME .venv/bin/python benchmarks/docker_path.py --warm 3
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parents[1]
CLOUD_DIR = pathlib.Path(os.environ.get("MAGNUM_CLOUD_DIR", REPO / ".cache" / "local-cloud"))


def zunclient():
    import openstack.config
    from zunclient import client

    region = openstack.config.OpenStackConfig(
        config_files=[str(CLOUD_DIR / "clouds.yaml")]).get_one(cloud="local")
    return client.Client("1.40", session=region.get_session(), region_name="RegionOne")


def docker(cloud, host, *args):
    sock = f"unix://{cloud['docker_dir']}/{host}/docker.sock"
    return subprocess.run(["/usr/bin/docker", "-H", sock, *args], capture_output=True,
                          text=True, timeout=120)


def memory_mib(cloud, host, uuid_):
    """Docker's figure: usage - total_inactive_file of the container's memory cgroup."""
    cid = docker(cloud, host, "ps", "-q", "--no-trunc", "--filter", f"name=zun-{uuid_}").stdout.strip()
    base = pathlib.Path("/sys/fs/cgroup/memory/docker") / cid
    usage = int((base / "memory.usage_in_bytes").read_text())
    stat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
    return (usage - int(stat.get("total_inactive_file", 0))) / 2**20


def run(zun, image, zone, timeout=300):
    t0 = time.monotonic()
    c = zun.containers.run(name=f"bench-{uuid.uuid4().hex[:8]}", image=image, cpu=0.5,
                           memory="512", availability_zone=zone)
    while True:
        status = zun.containers.get(c.uuid).status
        if status == "Running":
            return c.uuid, time.monotonic() - t0
        if status in ("Error", "Stopped") or time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{c.uuid}: {status} after {time.monotonic() - t0:.1f} s")
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=3, help="creates per host after the pull")
    parser.add_argument("--idle", type=float, default=30, help="seconds idle before measuring")
    args = parser.parse_args()
    cloud = json.loads((CLOUD_DIR / "docker.json").read_text())
    zun = zunclient()
    made, cold, warm, mem = [], [], [], []
    try:
        for host, zone in cloud["hosts"].items():
            docker(cloud, host, "rmi", "-f", cloud["image"])
            uid, took = run(zun, cloud["image"], zone)
            made.append((host, uid))
            cold.append(took)
            for _ in range(args.warm):
                uid, took = run(zun, cloud["image"], zone)
                made.append((host, uid))
                warm.append(took)
        time.sleep(args.idle)
        mem = [memory_mib(cloud, host, uid) for host, uid in made]
    finally:
        for _, uid in made:
            try:
                zun.containers.delete(uid, stop=True)
            except Exception as e:  # noqa: BLE001 - report, go on deleting
                print(f"delete {uid}: {e}", file=sys.stderr)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print("create -> Running, image pulled first (one per host): "
          + ", ".join(f"{t:.1f} s" for t in cold))
    print(f"create -> Running, image present: median {statistics.median(warm):.1f} s, "
          f"min {min(warm):.1f}, max {max(warm):.1f} (n={len(warm)})")
    print(f"memory per idle JupyterLab server after {args.idle:.0f} s: median "
          f"{statistics.median(mem):.0f} MiB, min {min(mem):.0f}, max {max(mem):.0f} "
          f"(n={len(mem)})")


if __name__ == "__main__":
    main()
