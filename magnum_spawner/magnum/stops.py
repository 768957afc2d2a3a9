"""A stop that could not finish: its pod stays owned until it is deleted.

``stop()`` can fail before the pod is deleted: right after a hub restart the
hub has no certificate yet and Magnum may not answer, the cluster's API may
not either, JupyterHub may cancel it.  JupyterHub then marks the server stopped
and clears its state, and the pod would run on, known to no one.  So the pod
(namespace, name, uid) stays in the state under ``unfinished_stop``
(``clear_state`` keeps it) until it is deleted: by a task that retries while
the hub runs, at the latest by the server's next start or ``delete_forever``.

A deletion names the pod's uid when it is known (a Kubernetes precondition),
so that a newer pod of the same name is never touched; only the server's own
start or ``delete_forever``, when no pod of that server should run, deletes by
name alone (a state saved before the uid was kept).
"""

import asyncio
import logging

from kubernetes_asyncio.client import V1DeleteOptions, V1Preconditions
from kubernetes_asyncio.client.rest import ApiException

log = logging.getLogger(__name__)

STATE_KEY = "unfinished_stop"
#: Seconds between the background attempts (the last one repeats).
RETRY_DELAYS = (5, 15, 30, 60)
#: the running retries (a task only weakly referenced may be collected)
_retries = set()


def entry(namespace, pod, uid):
    return {"namespace": namespace, "pod": pod, "uid": uid}


def with_entry(pending, item):
    """``pending`` with ``item`` in place of any entry for the same pod name."""
    key = (item["namespace"], item["pod"])
    return [p for p in pending if (p["namespace"], p["pod"]) != key] + [item]


async def delete(api, item, grace_seconds):
    """Delete the pod ``item`` names; return once it is gone, or is another pod
    than the one recorded (a newer pod of that name)."""
    body = V1DeleteOptions(grace_period_seconds=grace_seconds)
    if item.get("uid"):
        body.preconditions = V1Preconditions(uid=item["uid"])
    try:
        await api.delete_namespaced_pod(
            name=item["pod"], namespace=item["namespace"], body=body,
            grace_period_seconds=grace_seconds,
        )
    except ApiException as e:
        # 404: gone already; 409: the uid precondition failed, not our pod
        if e.status not in (404, 409):
            raise


def retry_later(finish, name):
    """Run ``await finish()`` after each of RETRY_DELAYS (the last repeating)
    until it returns without an error."""

    async def attempts():
        for attempt, delay in enumerate(_delays()):
            await asyncio.sleep(delay)
            try:
                await finish()
            except Exception as e:
                (log.warning if attempt == 0 else log.debug)(
                    "%s: the unfinished stop is still unfinished: %s", name, e)
                continue
            return

    task = asyncio.ensure_future(attempts())
    _retries.add(task)
    task.add_done_callback(_retries.discard)
    return task


def _delays():
    yield from RETRY_DELAYS[:-1]
    while True:
        yield RETRY_DELAYS[-1]
