"""A token revoked server-side while many requests are in flight (issue 8, item 6).

keystoneauth re-authenticates and resends a request answered 401 only in the
thread whose ``invalidate()`` found a cached token to drop.  When several requests
carry the revoked token, every one but the first finds the cache already empty
(another thread is fetching the new token), gets False and hands the 401 back:
with 40 concurrent GETs, 4-6 failed.  requests-mock serialises requests, so the
tests below replay that interleaving exactly: while the 401 travels back, the
other thread has just dropped the cached token.
"""

import json

import pytest

from magnum_spawner.zun.cinder import CinderVolumes
from magnum_spawner.common import cloud as cloud_context, errors
from magnum_spawner.zun.client import ZunClient

from .conftest import PASSWORD_AUTH
from .recorded import CINDER, CONTAINER_UUID, FIXTURES, ZUN, response


def recorded(name):
    rec = response(name)

    def answer(request, context):
        context.status_code = rec["status"]
        context.headers.update(rec["headers"])
        return rec["body"]
    return answer


def revoke_and_race(cloud, session):
    """Revoke the current token; its first refusal comes while another thread re-logs in."""
    cloud.revoked.add(session.auth.auth_ref.auth_token)
    raced = []

    def on_refusal():
        if not raced:
            raced.append(True)
            session.auth.invalidate()  # what the thread that won did just now
    return on_refusal


async def test_a_zun_request_refused_while_another_thread_re_logs_in_is_resent(cloud):
    cloud.fresh_tokens = True
    cloud.m.get(f"{ZUN}/v1/containers/{CONTAINER_UUID}", json=cloud.unauthorized_if_revoked(
        recorded("zun-container-show-running")))
    session = cloud_context.get_cloud(auth=PASSWORD_AUTH).session
    client = ZunClient(session, retry_delay=0.001)
    try:
        await client.get(CONTAINER_UUID)
        cloud.on_refusal = revoke_and_race(cloud, session)
        container = await client.get(CONTAINER_UUID)
    finally:
        client.close()
    assert container["uuid"] == CONTAINER_UUID
    tokens = [r.headers["X-Auth-Token"] for r in cloud.requests("GET", CONTAINER_UUID)]
    assert tokens[1] in cloud.revoked and tokens[2] not in cloud.revoked
    assert len(tokens) == 3


async def test_a_cinder_request_refused_while_another_thread_re_logs_in_is_resent(cloud):
    cloud.fresh_tokens = True
    rec = json.loads((FIXTURES / "recorded-extra" / "cinder-v3-versions.json").read_text())
    cloud.m.get("http://127.0.0.1:8776/v3/", json=rec["response"]["body"],
                headers=rec["response"]["headers"])
    vid = response("cinder-volume-show-available")["body"]["volume"]["id"]
    cloud.m.get(f"{CINDER}/volumes/{vid}", json=cloud.unauthorized_if_revoked(
        recorded("cinder-volume-show-available")))
    cloud_session = cloud_context.get_cloud(auth=PASSWORD_AUTH)
    cinder = CinderVolumes(cloud_session)
    try:
        await cinder.get(vid)
        cloud.on_refusal = revoke_and_race(cloud, cloud_session.session)
        volume = await cinder.get(vid)
    finally:
        cinder.close()
    assert volume["id"] == vid
    assert len(cloud.requests("GET", f"volumes/{vid}")) == 3


async def test_credentials_refused_for_good_are_still_an_error(cloud):
    # Every token is refused (the hub's user lost its role): one resend, then
    # the error, never a loop.
    cloud.fresh_tokens = True
    cloud.m.get(f"{ZUN}/v1/containers/{CONTAINER_UUID}", json=cloud.unauthorized_if_revoked(
        recorded("zun-container-show-running")))
    cloud.revoke_all = True
    client = ZunClient(cloud_context.get_cloud(auth=PASSWORD_AUTH).session, retry_delay=0.001)
    try:
        with pytest.raises(errors.AuthenticationFailed):
            await client.get(CONTAINER_UUID)
    finally:
        client.close()
    # keystoneauth's own resend, then ours
    assert len(cloud.requests("GET", CONTAINER_UUID)) == 3
