"""`make demo`: the local cloud plus a JupyterHub that spawns into it.

Brings `devstack/local-cloud` up (installing it on first use), starts JupyterHub
with `etc/local_jupyterhub_config.py` on http://127.0.0.1:8000 and prints how to
log in.  `make demo BACKEND=magnum` brings the cloud up with Magnum, makes a
Kubernetes cluster "demo" through Magnum's API (once) and starts the hub with
`etc/local_magnum_config.py` (MagnumSpawner).  Ctrl-C stops the hub (and with it every user's container) and the cloud;
`make demo-down` does the same from another terminal.
"""

import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]
CLOUD = REPO / "devstack" / "local-cloud"
STATE = pathlib.Path(os.environ.get("LOCAL_HUB_DIR", REPO / ".cache" / "demo"))
CLOUD_DIR = pathlib.Path(os.environ.get("MAGNUM_CLOUD_DIR", REPO / ".cache" / "local-cloud"))
PORT = int(os.environ.get("LOCAL_HUB_PORT", 8000))
PASSWORD = os.environ.get("LOCAL_HUB_PASSWORD", "demo-password")
ADMIN_PASSWORD = os.environ.get("LOCAL_HUB_ADMIN_PASSWORD", "demo-admin-password-at-least-32-chars")
BACKEND = os.environ.get("BACKEND", "zun")
CLUSTER = os.environ.get("LOCAL_MAGNUM_CLUSTER", "demo")


def kill_pid_file(path, sig=signal.SIGTERM):
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, sig)
        return pid
    except (OSError, ValueError):
        return None


def down():
    pid = kill_pid_file(STATE / "jupyterhub.pid")
    if pid:
        for _ in range(60):
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.5)
    kill_pid_file(STATE / "proxy.pid")
    print("demo hub stopped")


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except Exception:
        return False


def make_cluster():
    """The Magnum cluster of the demo, made through Magnum's API when missing."""
    import openstack

    cim = openstack.connect(cloud="local").container_infrastructure_management
    cluster = cim.find_cluster(CLUSTER)
    if cluster is None:
        template = cim.find_cluster_template(CLUSTER) or cim.create_cluster_template(
            name=CLUSTER, image_id="k8s-local-v1.20.2", coe="kubernetes",
            server_type="vm", tls_disabled=False, public=False)
        print(f"creating the Magnum cluster {CLUSTER!r} (about 10 s)")
        cluster = cim.create_cluster(name=CLUSTER, cluster_template_id=template.id,
                                     master_count=1, node_count=1)
    for _ in range(240):
        cluster = cim.get_cluster(cluster.id)
        if not cluster.status.endswith("IN_PROGRESS"):
            break
        time.sleep(1)
    print(f"Magnum cluster {CLUSTER!r}: {cluster.status}")


def main():
    if "--down" in sys.argv:
        down()
        return 0
    if BACKEND not in ("zun", "magnum"):
        print(f"BACKEND must be zun or magnum, not {BACKEND!r}")
        return 2
    magnum = BACKEND == "magnum"
    subprocess.run([str(CLOUD), "up"] + (["--with-magnum"] if magnum else []), check=True)
    STATE.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(CLOUD_DIR / "clouds.yaml"),
               LOCAL_HUB_DIR=str(STATE), LOCAL_HUB_PORT=str(PORT),
               LOCAL_MAGNUM_CLUSTER=CLUSTER)
    env.pop("OS_CLOUD", None)
    if magnum:
        os.environ["OS_CLIENT_CONFIG_FILE"] = env["OS_CLIENT_CONFIG_FILE"]
        make_cluster()
    config = "local_magnum_config.py" if magnum else "local_jupyterhub_config.py"
    log = open(STATE / "jupyterhub.log", "ab")
    hub = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(REPO / "etc" / config)],
        cwd=STATE, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{PORT}/"
    for _ in range(120):
        if hub.poll() is not None:
            print((STATE / "jupyterhub.log").read_text()[-3000:])
            print("JupyterHub exited; its log is above")
            return 1
        if answers(url + "hub/api/"):
            break
        time.sleep(0.5)
    print(f"""
    JupyterHub is running at {url}
      log in with any user name (e.g. "alice") and the password "{PASSWORD}";
      "admin" is an administrator (password "{ADMIN_PASSWORD}").  Start a server, open a notebook, run a cell:
      the server is {"a pod on the Magnum cluster " + repr(CLUSTER) if magnum else "a Zun container"} of the local cloud.
    Hub log: {STATE / 'jupyterhub.log'}   cloud logs: {CLOUD_DIR / 'logs'}
    Ctrl-C here (or `make demo-down`) stops the hub, its servers and the cloud.
    """)
    try:
        hub.wait()
    except KeyboardInterrupt:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(60)
        except subprocess.TimeoutExpired:
            hub.kill()
    finally:
        kill_pid_file(STATE / "proxy.pid")
        if not os.environ.get("LOCAL_CLOUD_KEEP"):
            subprocess.run([str(CLOUD), "down"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
