"""MagnumSpawner: servers as pods on a Magnum Kubernetes cluster (KubeSpawner).

Its dependencies are the ``magnum`` extra (``pip install
'magnum-spawner[magnum]'``): a Zun-only hub does not install them.
"""

try:
    import kubernetes_asyncio.client  # noqa: F401
    import kubespawner  # noqa: F401
except ImportError as e:
    raise ImportError(
        "MagnumSpawner (spawner_class = \"magnum\") needs KubeSpawner "
        "(jupyterhub-kubespawner) and kubernetes_asyncio, which are not installed "
        f"({e}): install them with pip install 'magnum-spawner[magnum]'"
    ) from e

from .spawner import MagnumSpawner  # noqa: E402

__all__ = ["MagnumSpawner"]
