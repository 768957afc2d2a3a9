"""MagnumSpawner: servers as pods on a Magnum Kubernetes cluster (KubeSpawner)."""

from .spawner import MagnumSpawner

__all__ = ["MagnumSpawner"]
