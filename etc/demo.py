"""`make demo`: the local cloud plus a JupyterHub that spawns into it.

Brings `devstack/local-cloud` up (installing it on first use), starts JupyterHub
with `etc/local_jupyterhub_config.py` on http://127.0.0.1:8000 and prints how to
log in.  `make demo BACKEND=magnum` brings the cloud up with Magnum, makes a
Kubernetes cluster "demo" through Magnum's API (once) and starts the hub with
`etc/local_magnum_config.py` (MagnumSpawner).  `HUB_CONFIG=path` names a
configuration file of yours, loaded after the demo's own.

Ctrl-C stops the hub (which stops every user's server first), then the cloud;
`make demo-down` does the same from another terminal and returns once both are
down.  Every `make demo` starts a fresh cloud (`local-cloud up` resets its
state), so the hub's database starts afresh too: a hub that remembered users
whose home volumes the cloud forgot would send them to nothing.
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


#: seconds the hub may take to stop its servers (each stop waits for Zun's delete)
STOP_TIMEOUT = int(os.environ.get("LOCAL_HUB_STOP_TIMEOUT", 600))


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie has exited: its parent has not reaped it yet
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def wait_gone(pid, what, timeout=STOP_TIMEOUT):
    """Wait until ``pid`` has exited; True if it did within ``timeout``."""
    t0 = time.monotonic()
    told = 0
    while alive(pid):
        waited = time.monotonic() - t0
        if waited > timeout:
            return False
        if waited - told >= 15:
            told = waited
            print(f"  still waiting for {what} ({waited:.0f} s)", flush=True)
        time.sleep(0.5)
    return True


def stop_hub(pid):
    """SIGTERM the hub, which stops every server, then exits; wait for that."""
    os.kill(pid, signal.SIGTERM)
    print("stopping the demo hub and its servers", flush=True)
    if not wait_gone(pid, "the hub to stop its servers"):
        print(f"the hub did not exit within {STOP_TIMEOUT} s; killing it")
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid, "the killed hub", 30)


def running_demo():
    """The pid of a running `make demo` (etc/demo.py) of this state directory."""
    try:
        pid = int((STATE / "demo.pid").read_text().strip())
        cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if pid == os.getpid() or not any(arg.endswith(b"demo.py") for arg in cmdline):
        return None  # a stale file: that pid is someone else now
    return pid if alive(pid) else None


def interrupted(signum, frame):
    raise KeyboardInterrupt


def down():
    """`make demo-down`: the `make demo` process stops the hub and the cloud;
    return when it has (or, without one, stop the hub here)."""
    demo = running_demo()
    if demo:
        os.kill(demo, signal.SIGTERM)
        print("stopping `make demo` (the hub, its servers, then the cloud)", flush=True)
        if wait_gone(demo, "`make demo` to stop the hub and the cloud", STOP_TIMEOUT + 120):
            print("demo stopped")
            return
    try:
        hub = int((STATE / "jupyterhub.pid").read_text().strip())
    except (OSError, ValueError):
        hub = None
    if hub and alive(hub):
        stop_hub(hub)
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
        print(f"creating the Magnum cluster {CLUSTER!r} (about 30 s: a control plane, a node)")
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
    extra = os.environ.get("HUB_CONFIG")
    if extra and not pathlib.Path(extra).is_file():
        print(f"HUB_CONFIG={extra}: no such file")
        return 2
    subprocess.run([str(CLOUD), "up"] + (["--with-magnum"] if magnum else []), check=True)
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "demo.pid").write_text(str(os.getpid()))
    # SIGTERM (`make demo-down`) takes the same way out as Ctrl-C.
    signal.signal(signal.SIGTERM, interrupted)
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(CLOUD_DIR / "clouds.yaml"),
               LOCAL_HUB_DIR=str(STATE), LOCAL_HUB_PORT=str(PORT),
               LOCAL_MAGNUM_CLUSTER=CLUSTER)
    env.setdefault("LOCAL_HUB_START_TIMEOUT", "600")  # a class's rush waits its turn
    env.pop("OS_CLOUD", None)
    if magnum:
        os.environ["OS_CLIENT_CONFIG_FILE"] = env["OS_CLIENT_CONFIG_FILE"]
        make_cluster()
    config = REPO / "etc" / ("local_magnum_config.py" if magnum else "local_jupyterhub_config.py")
    if extra:
        # the demo's configuration, then the operator's: theirs wins
        (STATE / "hub_config.py").write_text(
            f"load_subconfig({str(config)!r})\nload_subconfig({str(pathlib.Path(extra).resolve())!r})\n")
        config = STATE / "hub_config.py"
        print(f"hub configuration: {config} (the demo's, then {extra})")
    # The cloud was just reset: the hub's memory of users and servers goes with it.
    for stale in ("jupyterhub.sqlite", "jupyterhub.sqlite-journal"):
        (STATE / stale).unlink(missing_ok=True)
    log = open(STATE / "jupyterhub.log", "ab")
    hub = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        cwd=STATE, env=env, stdout=log, stderr=subprocess.STDOUT,
        # Ctrl-C reaches this process only, which then signals the hub once:
        # a second signal would start a second clean-up inside the hub
        start_new_session=True,
    )
    try:
        return run(hub, magnum)
    except KeyboardInterrupt:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up
        stop_hub(hub.pid)
        hub.wait()
        return 0
    finally:
        kill_pid_file(STATE / "proxy.pid")
        # only now: the hub's own clean-up needed the cloud
        if not os.environ.get("LOCAL_CLOUD_KEEP"):
            subprocess.run([str(CLOUD), "down"], check=False)
        (STATE / "demo.pid").unlink(missing_ok=True)


def run(hub, magnum):
    """Wait for the hub to answer, say how to use it, wait for it to exit."""
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
    hub.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
