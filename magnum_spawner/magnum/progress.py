"""What the spawn page says while a pod starts, from the pod's Kubernetes events.

KubeSpawner's own ``progress()`` shows each event of the pod as
``<time> [<type>] <message>`` with a bar that creeps toward 90 %; this turns
the events a scheduler and a kubelet emit into the same kind of plain steps
as the Zun path (:mod:`magnum_spawner.zun.progress`): pure functions from an
event (the API's JSON, as KubeSpawner's event reflector keeps it) to
``(percent, words)``, or None for an event that says nothing to a student.

Reasons are the scheduler's and the kubelet's (Kubernetes 1.20 and later):
``Scheduled`` / ``FailedScheduling``; ``Pulling``, ``Pulled``, ``Failed``
(pull and create errors), ``BackOff``, ``ErrImageNeverPull``,
``InspectFailed``; ``Created``, ``Started``; ``FailedMount``,
``FailedAttachVolume``.

:func:`page` puts them together with the start's own steps (the start
queue's "N students are starting before you", :mod:`..common.page`).
"""

import asyncio
import re

SCHEDULED = 20
PULLING = 35
PULLED = 60
CREATED = 70
STARTED = 80

_QUOTED = re.compile(r'"([^"]*)"')
# Go's duration as the kubelet prints it: 183.500187ms, 2.5s, 1m3.2s
_PULL_TIME = re.compile(r'" in (?:([0-9]+)m)?([0-9.]+)(ms|s)\b')
_ERROR_IMAGE = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                "ErrImageNeverPull")


def _image(message):
    found = _QUOTED.search(message or "")
    return found.group(1) if found else None


def _short(text, limit=160):
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def step(event):
    """``(percent, words)`` for one event, or None.

    ``percent`` is None for a warning that does not move the bar (the pod is
    still waiting: it may yet start).
    """
    reason = event.get("reason") or ""
    message = event.get("message") or ""
    if reason == "Scheduled":
        return SCHEDULED, "A machine was found for your server"
    if reason == "FailedScheduling":
        return None, f"No machine has room for your server yet ({_short(message)})"
    if reason == "Pulling":
        return PULLING, "Downloading the software image"
    if reason == "Pulled":
        if "already present" in message:
            return PULLED, "The software image is already on the machine"
        took = _PULL_TIME.search(message)
        if took:
            minutes, amount, unit = took.groups()
            seconds = float(amount) / (1000 if unit == "ms" else 1) + 60 * int(minutes or 0)
            return PULLED, f"The software image is downloaded (in {seconds:.1f} s)"
        return PULLED, "The software image is downloaded"
    if reason in ("Failed", "ErrImageNeverPull", "InspectFailed", "BackOff"):
        return None, failure(event)
    if reason == "Created":
        return CREATED, "Your server is set up; starting it"
    if reason == "Started":
        return STARTED, "Your server is running"
    if reason in ("FailedMount", "FailedAttachVolume"):
        # the kubelet tries again (a volume still attaching comes ready within
        # seconds); if it never does, the start's deadline ends it in words
        return None, f"Attaching your home folder; the machine tries again ({_short(message, 100)})"
    return None


def failure(event):
    """The sentence for a warning that can keep the server from starting."""
    reason = event.get("reason") or ""
    message = event.get("message") or ""
    image = _image(message)
    if reason == "BackOff" and message.startswith("Back-off pulling image"):
        return (f"The software image {image} could not be downloaded; "
                "trying again")
    if reason == "BackOff":
        return f"Your server keeps stopping right after it starts ({_short(message)})"
    if message.startswith("Failed to pull image") or "pull" in message.lower():
        if message.startswith("Error: "):
            # the kubelet's second event for the same failure
            return f"The software image could not be downloaded ({message[7:]})"
        detail = message.split(": ", 1)[1] if ": " in message else message
        if "not found" in detail or "NotFound" in detail:
            return (f"The software image {image} does not exist in its registry; "
                    "tell your administrator")
        return f"The software image {image} could not be downloaded ({_short(detail)})"
    if message.startswith("Error: ") and message[7:] in _ERROR_IMAGE:
        return f"The software image could not be downloaded ({message[7:]})"
    return f"Your server could not be started ({_short(message)})"


def image_failure(event):
    """Whether the event says the image cannot be had (the pod will wait)."""
    reason = event.get("reason") or ""
    message = event.get("message") or ""
    return (reason == "Failed" and ("pull" in message.lower()
                                    or message[7:] in _ERROR_IMAGE)) or \
        reason == "ErrImageNeverPull" or \
        (reason == "BackOff" and message.startswith("Back-off pulling image"))


def failed(reflector):
    """Whether KubeSpawner's ``reflector`` failed its first listing (it stays
    failed: whoever waits for it gets that error)."""
    first = getattr(reflector, "first_load_future", None)
    return first is not None and first.done() and not first.cancelled() \
        and first.exception() is not None


async def merged(*sources):
    """``(number, item)`` from several async generators as their items come,
    until all have ended (``number``: the source's place in ``sources``)."""
    queue, ended = asyncio.Queue(), object()

    async def pump(number, source):
        try:
            async for item in source:
                queue.put_nowait((number, item))
        finally:
            queue.put_nowait((number, ended))

    pumps = [asyncio.ensure_future(pump(n, source)) for n, source in enumerate(sources)]
    try:
        left = len(pumps)
        while left:
            number, item = await queue.get()
            if item is ended:
                left -= 1
            else:
                yield number, item
        for done in pumps:
            if done.exception() is not None:
                raise done.exception()
    finally:
        for running in pumps:
            running.cancel()


async def page(own, pod):
    """The spawn page's events: a start's ``own`` steps (``{"progress",
    "message"}``) and the ``pod``'s events (KubeSpawner's ``progress()``) as
    :func:`step` makes them, each said once, with a bar that only moves forward."""
    percent, said = 0, None
    async for from_pod, event in merged(own, pod):
        if from_pod:
            raw = event.get("raw_event")
            found = step(raw) if raw else None
        else:
            found = event["progress"], event["message"]
        if found is None:
            continue
        step_percent, words = found
        if step_percent is not None:
            percent = max(percent, step_percent)
        if words != said:
            said = words
            yield {"progress": percent, "message": words}
