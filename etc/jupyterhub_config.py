# Example JupyterHub configuration for magnum-spawner on an OpenStack cloud with
# Zun (containers) and Cinder (home volumes).  See README.md for each setting.
c = get_config()  # noqa: F821

c.JupyterHub.spawner_class = "zun"

# Credentials: a clouds.yaml entry (see etc/clouds.yaml.example).  OS_CLOUD or
# OS_AUTH_URL & co. in the hub's environment work too.
c.ZunSpawner.cloud = "jupyterhub"

# The hub must be reachable from the containers: listen on an address of the
# Neutron network the containers use (or set hub_connect_url).
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_url = "http://10.0.0.10:8081"

# Containers: which network, which security groups, and a distinct id for this
# hub's containers and volumes if several hubs share the project.
c.ZunSpawner.network = "jupyter-net"
c.ZunSpawner.security_groups = ["jupyter-singleuser"]
c.ZunSpawner.hub_id = "physics-hub"

# Sizes and images users may choose on the spawn page.  The default flavors are
# small (0.5 vCPU, 1024 MiB), standard (1 vCPU, 2048 MiB: the size the hub ran
# with before, and the default) and large (2 vCPUs, 4096 MiB); staff may have large.
c.ZunSpawner.allowed_flavors = ["small", "standard"]
c.ZunSpawner.group_overrides = {
    "staff": {"groups": ["staff"],
              "spawner_override": {"allowed_flavors": ["small", "standard", "large"]}},
}
c.ZunSpawner.images = {
    "quay.io/jupyter/base-notebook": {"display_name": "Python",
                                      "description": "JupyterLab with Python"},
    "quay.io/jupyter/scipy-notebook": {"display_name": "Scientific Python",
                                       "description": "NumPy, SciPy, pandas, matplotlib"},
}
c.ZunSpawner.default_image = "quay.io/jupyter/base-notebook"

# Home volumes on Cinder: the volume's size is the user's storage quota.
c.ZunSpawner.home_volume_size = 1  # GiB
c.ZunSpawner.home_mount_path = "/home/jovyan"
c.ZunSpawner.delete_home_volume_on_delete = False

# Starting a container (image pull on a cold host) can take a while.
c.ZunSpawner.start_timeout = 300

# Stop servers idle for an hour (jupyterhub-idle-culler, `pip install
# jupyterhub-idle-culler`): the container goes, the home volume stays, and
# the user's next start reattaches it.
import sys  # noqa: E402

c.JupyterHub.services = [{
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"],
}]
c.JupyterHub.load_roles = [{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}]
