"""JupyterHub on the local cloud's Magnum cluster (``make demo BACKEND=magnum``).

The local-cloud settings of ``local_jupyterhub_config.py`` (ports, login, state
directory), with MagnumSpawner instead of ZunSpawner.  Also read from the
environment:

  LOCAL_MAGNUM_CLUSTER  the Magnum cluster (name or uuid; default "demo")
"""

import os
import pathlib

c = get_config()  # noqa: F821
load_subconfig(str(pathlib.Path(__file__).with_name("local_jupyterhub_config.py")))  # noqa: F821

c.JupyterHub.spawner_class = "magnum"
c.MagnumSpawner.cloud = os.environ.get("LOCAL_HUB_CLOUD", "local")
c.MagnumSpawner.hub_id = os.environ.get("LOCAL_HUB_ID", "local-demo")
c.MagnumSpawner.magnum_cluster = os.environ.get("LOCAL_MAGNUM_CLUSTER", "demo")
# The local cluster's kubelet stand-in maps this image onto a virtualenv with
# JupyterLab, as the local Zun does.
c.MagnumSpawner.image = "quay.io/jupyter/base-notebook"
# The stand-in runs processes as root (no user namespaces here).
c.MagnumSpawner.args = ["--ServerApp.allow_root=True"]
c.MagnumSpawner.environment = {"HOME": "/home/jovyan"}
c.MagnumSpawner.working_dir = "/home/jovyan"
c.MagnumSpawner.home_volume_size = 1
c.MagnumSpawner.start_timeout = 120
c.MagnumSpawner.http_timeout = 60
c.MagnumSpawner.delete_grace_period = 2
