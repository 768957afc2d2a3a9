"""The shared choice (flavor, image, home size) as KubeSpawner settings.

What the flavor means on Zun and on Kubernetes:

- ``memory``: the pod's memory limit *and* request.  A hard limit: past it the
  kernel's OOM killer ends the server, as with Zun's ``memory``; the request
  makes the scheduler reserve it on the node, as Zun's scheduler does on its
  host.  (Kubernetes counts ``Mi`` as MiB, Zun's unit.)
- ``cpu``: the limit *and* request.  Zun's default ``cpu_policy`` ``shared``
  gives the container 1024 CPU shares per vCPU and a CFS quota of ``cpu``
  periods; Kubernetes turns a request into the same shares and a limit into the
  same quota.  Where they differ: ``cpu_policy: dedicated`` pins whole cores on
  Zun; Kubernetes pins them only on nodes whose kubelet runs the static CPU
  manager policy (the pod qualifies: Guaranteed, whole cores), else it is the
  same shares and quota as ``shared``.
- ``disk`` (GiB): an ``ephemeral-storage`` limit and request (Zun sizes the
  container's root disk; Kubernetes evicts a pod that writes more).
- ``home_volume_size``: a PersistentVolumeClaim of that size, mounted at
  ``home_mount_path``; kept when the server stops, like the Cinder volume.
"""

import re


EPHEMERAL = "ephemeral-storage"
HOME_VOLUME = "home"
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")


def apply(spawner, choice, *, home_gib):
    """Set ``spawner``'s KubeSpawner traits from its chosen flavor and home size.

    ``choice`` is what ``apply_flavor()`` returned (it has set ``mem_limit``
    and ``cpu_limit``).  Requests equal limits (see the module doc).
    """
    spawner.mem_guarantee = spawner.mem_limit
    spawner.cpu_guarantee = spawner.cpu_limit
    limits = _configured(spawner, "extra_resource_limits")
    guarantees = _configured(spawner, "extra_resource_guarantees")
    if choice.disk:
        limits[EPHEMERAL] = guarantees[EPHEMERAL] = f"{choice.disk}Gi"
    spawner.extra_resource_limits = limits
    spawner.extra_resource_guarantees = guarantees
    spawner.extra_labels = {**_configured(spawner, "extra_labels"), **label_values(choice.labels)}

    volumes = _configured(spawner, "volumes")
    mounts = _configured(spawner, "volume_mounts")
    spawner.storage_pvc_ensure = bool(home_gib)
    if home_gib:
        spawner.storage_capacity = f"{int(home_gib)}Gi"
        spawner.storage_class = spawner.home_storage_class or None
        volumes[HOME_VOLUME] = {
            "name": HOME_VOLUME,
            "persistentVolumeClaim": {"claimName": "{pvc_name}"},
        }
        mounts[HOME_VOLUME] = {"name": HOME_VOLUME, "mountPath": spawner.home_mount_path}
    spawner.volumes = volumes
    spawner.volume_mounts = mounts


def _configured(spawner, trait):
    """A copy of the operator's value of ``trait``, before any choice changed it
    (a spawner starts many times, with other choices)."""
    saved = spawner.__dict__.setdefault("_configured_traits", {})
    if trait not in saved:
        saved[trait] = getattr(spawner, trait)
    return dict(saved[trait])


def label_values(labels):
    """The choice's labels (``hub.jupyter.org/flavor``, ``/image``) that Kubernetes
    takes: a value is at most 63 characters of ``[A-Za-z0-9_.-]``, so an image
    reference (with ``/`` and ``:``) is kept only in ``user_options`` and the state."""
    return {k: v for k, v in labels.items() if _LABEL_VALUE.fullmatch(v)}
