"""magnum-spawner: JupyterHub single-user servers as OpenStack Zun containers."""

from .zun.spawner import ZunSpawner

__version__ = "0.1.0"
__all__ = ["ZunSpawner", "__version__"]
