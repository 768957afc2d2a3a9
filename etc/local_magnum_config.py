"""JupyterHub on the local cloud's Magnum cluster (``make demo BACKEND=magnum``).

The local-cloud settings of ``local_jupyterhub_config.py`` (ports, login, state
directory), with MagnumSpawner instead of ZunSpawner.  Also read from the
environment:

  LOCAL_MAGNUM_CLUSTER  the Magnum cluster (name or uuid; default "demo")
"""

import json
import os
import pathlib

c = get_config()  # noqa: F821
load_subconfig(str(pathlib.Path(__file__).with_name("local_jupyterhub_config.py")))  # noqa: F821

c.JupyterHub.spawner_class = "magnum"
# The local Zun's settings mean the same here: the cloud, the hub's id, the
# image (replaced below by the local registry's, which the nodes pull), root's
# server arguments, the environment, the timeouts.
for name in ("cloud", "hub_id", "image", "args", "environment", "start_timeout",
             "http_timeout"):
    setattr(c.MagnumSpawner, name, c.ZunSpawner[name])
c.MagnumSpawner.working_dir = c.ZunSpawner.workdir
c.MagnumSpawner.magnum_cluster = os.environ.get("LOCAL_MAGNUM_CLUSTER", "demo")
c.MagnumSpawner.home_volume_size = 1
c.MagnumSpawner.delete_grace_period = 2

# The pods are on the nodes'
# networks, which reach the local cloud at one address (the hub listens there),
# and the nodes pull the notebook image from the local registry.
nodes_path = pathlib.Path(os.environ.get("OS_CLIENT_CONFIG_FILE") or "/nonexistent").with_name(
    "magnum-nodes.json")
if nodes_path.exists():
    nodes = json.loads(nodes_path.read_text())
    c.JupyterHub.hub_ip = nodes["hub_ip"]
    c.MagnumSpawner.image = nodes["image"]
