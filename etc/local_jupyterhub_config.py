"""JupyterHub configuration for the local stand-in cloud (devstack/local-cloud).

Used by `make demo` and by the end-to-end tests (which load it and add their own
lines).  Settings come from the environment so that several hubs can run at once:

  LOCAL_HUB_DIR         where the hub keeps its database, cookie secret, pid files
  LOCAL_HUB_PORT        public port of the proxy (default 8000)
  LOCAL_HUB_API_PORT    the hub's own port (default 8081)
  LOCAL_HUB_PROXY_API_PORT  the proxy's API port (default 8001)
  LOCAL_HUB_ID          ZunSpawner.hub_id (default "local-demo")
  LOCAL_HUB_CLOUD       the clouds.yaml entry (default "local")
  LOCAL_HUB_PASSWORD    every user's password (default "demo-password")
  LOCAL_HUB_ADMIN_PASSWORD  the password of "admin" (32+ characters)
  LOCAL_HUB_CULL_TIMEOUT  idle seconds before a server is stopped (default 3600; 0: off)
  LOCAL_HUB_CULL_EVERY  seconds between the culler's checks (default timeout/4, at most 300)
  LOCAL_HUB_START_TIMEOUT  Spawner.start_timeout (default 120; `make demo`: 600)
  OS_CLIENT_CONFIG_FILE the clouds.yaml written by `devstack/local-cloud up`
"""

import json
import os
import pathlib
import shutil
import sys

c = get_config()  # noqa: F821

repo = pathlib.Path(__file__).resolve().parents[1]
state = pathlib.Path(os.environ.get("LOCAL_HUB_DIR", repo / ".cache" / "demo"))
state.mkdir(parents=True, exist_ok=True)

# Everything listens on loopback only.
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(os.environ.get("LOCAL_HUB_PORT", 8000))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("LOCAL_HUB_API_PORT", 8081))
c.ConfigurableHTTPProxy.api_url = (
    f"http://127.0.0.1:{int(os.environ.get('LOCAL_HUB_PROXY_API_PORT', 8001))}"
)
chp = repo / ".cache" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
c.ConfigurableHTTPProxy.command = [str(chp) if chp.exists() else
                                   shutil.which("configurable-http-proxy") or "configurable-http-proxy"]
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = str(state / "cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")

# A login a newcomer can use: any user name, the shared password below
# (JupyterHub 5.3's shared-password authenticator: DummyAuthenticator.password
# is deprecated).  Its admin password must be 32 characters or more.
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = os.environ.get(
    "LOCAL_HUB_PASSWORD", "demo-password")
c.SharedPasswordAuthenticator.admin_password = os.environ.get(
    "LOCAL_HUB_ADMIN_PASSWORD", "demo-admin-password-at-least-32-chars")
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}
c.JupyterHub.allow_named_servers = True

c.JupyterHub.spawner_class = "zun"
c.ZunSpawner.cloud = os.environ.get("LOCAL_HUB_CLOUD", "local")
c.ZunSpawner.hub_id = os.environ.get("LOCAL_HUB_ID", "local-demo")
# On the local cloud docker.json below names the image in its registry.
c.ZunSpawner.image = "quay.io/jupyter/base-notebook"
# The servers run as root (the local notebook image has no other user).
c.ZunSpawner.args = ["--ServerApp.allow_root=True"]
c.ZunSpawner.environment = {"HOME": "/home/jovyan"}
c.ZunSpawner.workdir = "/home/jovyan"
# start() waits its turn in the start queue (at most concurrent_starts, 4, start
# at once) and then for the server to answer: the timeout covers both.  The
# demo's 600 s lets a class of 50 in on this 2-core machine (README, "Load test").
c.ZunSpawner.start_timeout = int(os.environ.get("LOCAL_HUB_START_TIMEOUT", 120))
c.ZunSpawner.http_timeout = 60
# The local Cinder formats each new volume (ext4 on a loop file): during a rush on
# a busy 2-core machine that took over the default 30 s (3 of 50 in one run).
c.ZunSpawner.home_volume_timeout = 120
# Poll often: the demo and the tests want to see a dead server quickly.
c.ZunSpawner.poll_interval = 5
c.ZunSpawner.hub_poll_interval = 2
c.ZunSpawner.hub_full_poll_interval = 10

# The local cloud's Docker hosts (devstack/docker-cloud.sh):
# the servers are containers on a bridge that cannot reach 127.0.0.1, so the hub
# listens on the bridge's address, and the image comes from the local registry.
docker_path = pathlib.Path(os.environ.get("OS_CLIENT_CONFIG_FILE") or "/nonexistent").with_name(
    "docker.json")
if docker_path.exists():
    docker_cloud = json.loads(docker_path.read_text())
    c.JupyterHub.hub_ip = docker_cloud["hub_ip"]
    c.ZunSpawner.image = docker_cloud["image"]

# Idle culling (jupyterhub-idle-culler as a hub service): a server without
# activity for LOCAL_HUB_CULL_TIMEOUT seconds (default 3600, the classic hour)
# is stopped: its container is removed, its home volume kept.  0 turns it off.
cull_timeout = int(os.environ.get("LOCAL_HUB_CULL_TIMEOUT", 3600))
if cull_timeout > 0:
    cull_every = int(os.environ.get("LOCAL_HUB_CULL_EVERY", max(1, min(300, cull_timeout // 4))))
    c.JupyterHub.services = [{
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                    f"--timeout={cull_timeout}", f"--cull-every={cull_every}"],
    }]
    c.JupyterHub.load_roles = [{
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }]
