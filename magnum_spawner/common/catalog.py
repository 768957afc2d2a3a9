"""What the operator offers: flavors (named sizes) and images.

Pure: the configuration as :class:`Flavor` and :class:`Image` values, checked
against the sizes Zun accepts, with a message naming what is wrong.
"""

import math
from dataclasses import dataclass

MIB = 1024 * 1024
#: Zun's default accepted ranges (``memory`` schema 4-8192 MiB; ``cpu`` 0.1-16
#: vCPUs unless the operator changed ``[DEFAULT] maximum_cpus``).
ZUN_MEMORY_RANGE_MIB = (4, 8192)
ZUN_CPU_RANGE = (0.1, 16.0)


def memory_mib(mem_bytes):
    """JupyterHub's ``mem_limit`` (bytes) as Zun's whole MiB, rounded up."""
    if mem_bytes is None:
        return None
    return max(math.ceil(int(mem_bytes) / MIB), 1)


def check_memory_mib(mib, what="mem_limit"):
    """Raise ValueError when ``mib`` is outside Zun's accepted range."""
    low, high = ZUN_MEMORY_RANGE_MIB
    if mib is not None and not low <= mib <= high:
        raise ValueError(
            f"{what} is {mib} MiB; Zun accepts {low}-{high} MiB per container"
        )


def check_cpu(cpu, what="cpu_limit"):
    low, high = ZUN_CPU_RANGE
    if cpu is not None and not low <= float(cpu) <= high:
        raise ValueError(f"{what} is {cpu} vCPUs; Zun accepts {low}-{high:g} vCPUs")


#: Longest flavor or image name accepted (in configuration and in user_options).
MAX_NAME_LENGTH = 255
CPU_POLICIES = ("shared", "dedicated")
_FLAVOR_KEYS = ("cpu", "memory", "disk", "cpu_policy", "display_name", "description")
_IMAGE_KEYS = ("display_name", "description")

#: The hub's sizes before flavors existed (1 vCPU, 2 GiB) is "standard".
DEFAULT_FLAVORS = {
    "small": {
        "cpu": 0.5,
        "memory": 1024,
        "display_name": "Small",
        "description": "Half a CPU and 1 GiB of memory: reading and light editing.",
    },
    "standard": {
        "cpu": 1.0,
        "memory": 2048,
        "display_name": "Standard",
        "description": "One CPU and 2 GiB of memory.",
    },
    "large": {
        "cpu": 2.0,
        "memory": 4096,
        "display_name": "Large",
        "description": "Two CPUs and 4 GiB of memory: heavier computations.",
    },
}
DEFAULT_FLAVOR = "standard"


@dataclass(frozen=True)
class Flavor:
    name: str
    cpu: float
    memory: int
    disk: int | None = None
    cpu_policy: str | None = None
    display_name: str = ""
    description: str = ""

    @property
    def summary(self):
        """``1 vCPU, 2048 MiB memory`` (plus disk and pinning when set)."""
        cpu = f"{self.cpu:g} vCPU" + ("" if self.cpu == 1 else "s")
        parts = [cpu, f"{self.memory} MiB memory"]
        if self.disk:
            parts.append(f"{self.disk} GiB disk")
        if self.cpu_policy == "dedicated":
            parts.append("dedicated cores")
        return ", ".join(parts)


@dataclass(frozen=True)
class Image:
    name: str
    display_name: str = ""
    description: str = ""


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_name(kind, name):
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{kind} names must be non-empty strings, not {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{kind} name {name[:40]!r}... is longer than {MAX_NAME_LENGTH} characters"
        )


def _text(where, key, value):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key} must be a string, not {value!r}")
    return value


def parse_flavor(name, spec):
    """A :class:`Flavor` from its configuration; ValueError naming the flavor."""
    _check_name("flavor", name)
    where = f"flavor {name!r}"
    if not isinstance(spec, dict):
        raise ValueError(f"{where} must be a dict with cpu and memory, not {spec!r}")
    unknown = sorted(str(k) for k in spec if k not in _FLAVOR_KEYS)
    if unknown:
        raise ValueError(
            f"{where} has unknown key(s) {', '.join(unknown)}; "
            f"use {', '.join(_FLAVOR_KEYS)}"
        )
    cpu = spec.get("cpu")
    memory = spec.get("memory")
    if not _is_number(cpu) or not math.isfinite(cpu):
        raise ValueError(f"{where}: cpu must be a number of vCPUs, not {cpu!r}")
    if not _is_number(memory) or memory != int(memory):
        raise ValueError(f"{where}: memory must be a whole number of MiB, not {memory!r}")
    memory = int(memory)
    check_cpu(cpu, what=f"{where} cpu")
    check_memory_mib(memory, what=f"{where} memory")
    disk = spec.get("disk")
    if disk is not None:
        if not _is_number(disk) or disk != int(disk) or disk < 0:
            raise ValueError(f"{where}: disk must be a whole number of GiB, not {disk!r}")
        disk = int(disk) or None
    policy = spec.get("cpu_policy")
    if policy is not None:
        if policy not in CPU_POLICIES:
            raise ValueError(
                f"{where}: cpu_policy must be 'shared' or 'dedicated', not {policy!r}"
            )
        if policy == "dedicated" and cpu != int(cpu):
            raise ValueError(
                f"{where}: cpu_policy 'dedicated' pins whole cores; "
                f"cpu must be a whole number, not {cpu!r}"
            )
    return Flavor(
        name=name,
        cpu=float(cpu),
        memory=memory,
        disk=disk,
        cpu_policy=policy,
        display_name=_text(where, "display_name", spec.get("display_name")) or name,
        description=_text(where, "description", spec.get("description")),
    )


def parse_image(name, spec):
    """An :class:`Image` from its configuration (a dict or a display name)."""
    _check_name("image", name)
    where = f"image {name!r}"
    if spec is None:
        spec = {}
    elif isinstance(spec, str):
        spec = {"display_name": spec}
    if not isinstance(spec, dict):
        raise ValueError(
            f"{where} must be a display name or a dict with display_name and "
            f"description, not {spec!r}"
        )
    unknown = sorted(str(k) for k in spec if k not in _IMAGE_KEYS)
    if unknown:
        raise ValueError(
            f"{where} has unknown key(s) {', '.join(unknown)}; use {', '.join(_IMAGE_KEYS)}"
        )
    return Image(
        name=name,
        display_name=_text(where, "display_name", spec.get("display_name")) or name,
        description=_text(where, "description", spec.get("description")),
    )


def parse_flavors(table):
    return {name: parse_flavor(name, spec) for name, spec in table.items()}


def parse_images(table):
    if isinstance(table, (list, tuple)):
        table = {name: None for name in table}
    return {name: parse_image(name, spec) for name, spec in table.items()}
