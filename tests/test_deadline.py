"""A start out of time ends with the spawner's sentence, however JupyterHub waits
(common/deadline.py).

JupyterHub 5.0 and 5.1 wait for start() with ``gen.with_timeout`` (never
cancelling it: at ``start_timeout`` the spawn page says "Spawn failed: "
and start()'s own exception, later, reaches nobody); 5.2 and later cancel it
(``tests/test_hub_lifecycle.py`` runs that through JupyterHub's own
User.spawn).  The rest of a rush keeps the hub's event loop busy.
"""

import asyncio
import time
from datetime import timedelta

import pytest
from jupyterhub.spawner import SpawnException
from tornado import gen

from magnum_spawner.common import answering

from .fake_zun import LifecycleZun
from .helpers import make_spawner


async def busy_loop(block):
    """The rest of a rush on the hub's event loop (2 cores, dozens of starts):
    each turn of the loop waits ``block`` s for the CPU."""
    while True:
        time.sleep(block)
        await asyncio.sleep(0)


@pytest.mark.slow
async def test_a_start_out_of_time_on_a_lagging_hub_beats_jupyterhub_5_0s_wait(
        cloud, fast_janitor, monkeypatch):
    async def never(url, timeout):  # a JupyterLab server still loading
        return False

    monkeypatch.setattr(answering, "probe", never)
    zun = LifecycleZun(script=["Creating", "Running"]).install(cloud.m)
    spawner = make_spawner(config={"start_timeout": 10, "concurrent_starts": 0})
    lag = asyncio.ensure_future(busy_loop(0.3))
    try:
        # what JupyterHub 5.0's User.spawn does with start()
        started = asyncio.ensure_future(spawner.start())
        with pytest.raises(SpawnException) as failed:
            await gen.with_timeout(timedelta(seconds=spawner.start_timeout), started)
    finally:
        lag.cancel()
    # which phase the lag ends depends on the machine; each names its own
    assert "within 10 s" in failed.value.message
    assert failed.value.reason == "timeout"
    for _ in range(100):  # the janitor removes what the start made
        if not zun.alive():
            break
        await asyncio.sleep(0.05)
    assert not zun.alive()
