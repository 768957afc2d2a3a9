"""What the spawn page says while a server starts, from what the cloud reports.

Pure functions from Zun's container view (``status``, ``task_state``,
``status_reason``) and Cinder's volume status to ``(percent, words)`` a student
understands.  ``task_state`` values are Zun's (``zun/common/consts.py``): Zun 18
sets ``container_creating`` around the image download and create;
``image_pulling`` and ``network_attaching`` appear on other versions and paths.
"""

#: (percent, words) for each step; the spawner never lets the percent go back.
REMOVING_OLD = 5
VOLUME_CREATING = 10
VOLUME_STATUS = 12
VOLUME_GROWING = 14
VOLUME_READY = 18
ASKING = 20
RUNNING = 80
REACHABLE = 85
ANSWERING = 95

_VOLUME_WORDS = {
    "creating": "being created",
    "available": "ready",
    "extending": "growing",
    "reserved": "being attached",
    "attaching": "being attached",
    "in-use": "attached",
    "detaching": "being detached from your previous server",
    "downloading": "being filled from its image",
    "deleting": "being deleted",
}


def volume_status(status):
    """``"Your home folder is being attached"`` for Cinder's ``attaching``."""
    return VOLUME_STATUS, f"Your home folder is {_VOLUME_WORDS.get(status, status)}"


def volume_creating(size_gib):
    return VOLUME_CREATING, f"Creating your home folder ({size_gib} GiB)"


def volume_growing(have, size):
    return VOLUME_GROWING, f"Growing your home folder from {have} to {size} GiB"


def volume_ready():
    return VOLUME_READY, "Your home folder is ready"


def asking():
    return ASKING, "Asking the cloud for a server"


def container_step(container, home_volume=False):
    """The step a container is at, or None when it says nothing new."""
    status = container.get("status")
    task = container.get("task_state")
    if status == "Creating":
        if task == "image_pulling":
            return 40, "Downloading the software image"
        if task == "container_creating":
            return 45, "Downloading the software image and setting up your server"
        if task == "network_attaching":
            return 55, "Connecting your server to the network"
        if home_volume:
            return 30, "Attaching your home folder"
        return 30, "Finding a machine for your server"
    if status == "Created":
        if task == "container_starting":
            return 70, "Starting your server"
        return 65, "Your server is set up; starting it"
    if status == "Restarting":
        return 70, "Starting your server again"
    if status == "Running":
        return RUNNING, "Your server is running"
    if status == "Unknown":
        return None, "The cloud cannot tell what your server is doing; waiting"
    return None


def failure(container):
    """The last event's words when the container ended instead of running."""
    reason = (container.get("status_reason") or "").strip()
    detail = (container.get("status_detail") or "").strip()
    status = container.get("status")
    if status == "Error":
        return f"The cloud could not start your server: {reason or 'no reason given'}"
    why = reason or detail or status
    return f"Your server stopped while starting ({why})"


def reachable():
    # the address is for the log: a student cannot use it
    return REACHABLE, "Your server's notebook software is starting; waiting for it to answer"


def answering():
    return ANSWERING, "Your server is answering; opening it"
