"""Idle culling on the local cloud: jupyterhub-idle-culler as a hub service.

The hub runs the culler as etc/local_jupyterhub_config.py configures it (the
demo's is 60 minutes), here with a 20 s timeout: an idle server is stopped,
its Zun container removed, its Cinder home volume kept with the user's file,
and the next start gets the same volume and file back.
"""

import re
import time

import pytest

from .conftest import wait_for
from .test_home_volumes_e2e import cell, cleanup, the_home_volume, volume_status

pytestmark = pytest.mark.localcloud


def test_an_idle_server_is_culled_its_container_removed_its_home_kept(hub_factory):
    hub = hub_factory(env={"LOCAL_HUB_CULL_TIMEOUT": "20", "LOCAL_HUB_CULL_EVERY": "5"})
    user = "idle-ida"
    try:
        hub.start_server(user)
        container_id = hub.server(user)["state"]["container_id"]
        assert hub.cloud.container(container_id) is not None
        volume = the_home_volume(hub, user)
        cell(hub, user, "open('/home/jovyan/kept.txt', 'w').write('still here')")
        t0 = time.monotonic()
        # Nobody touches the server now: the culler stops it after ~20 s idle.
        wait_for(lambda: not (hub.server(user) or {}).get("ready")
                 and not (hub.server(user) or {}).get("pending"),
                 120, 1, "the culler to stop the server")
        culled_after = time.monotonic() - t0
        assert culled_after >= 10, f"culled after {culled_after:.0f} s: not idle long enough"
        # It was the culler: its own decision, then its DELETE through the hub's
        # API under its service name, and nobody else's stop.
        log = hub.log_path.read_text(errors="replace")
        assert f"Culling server {user} (inactive for" in log, hub.log_tail(100)
        stops = re.findall(rf"\b(\d{{3}}) DELETE /hub/api/users/{user}/server \((\S*)@", log)
        assert stops and all(status in ("202", "204") for status, _ in stops), stops
        assert {who for _, who in stops} == {"idle-culler"}, stops
        wait_for(lambda: hub.cloud.container(container_id) is None, 60, 1,
                 "the container to be removed")
        # The home volume stays, detached, with the file.
        wait_for(lambda: volume_status(hub, volume.id) == "available", 60, 1,
                 "the volume to be detached")
        hub.start_server(user)
        assert the_home_volume(hub, user).id == volume.id
        assert cell(hub, user, "print(open('/home/jovyan/kept.txt').read())") == "still here"
    finally:
        cleanup(hub, user)
