"""Cinder home volumes on the local cloud: real Cinder, real Zun, real hub.

Every server of these hubs gets a 1 GiB home volume (the default), which the
local cloud's zun-compute driver mounts as a real 1 GiB ext4 file system at
/home/jovyan.
"""

import json
import sqlite3

import pytest

from .conftest import wait_for

pytestmark = pytest.mark.localcloud

HOME = "/home/jovyan"


def home_volumes(hub, user):
    """This hub's home volumes of ``user``, as Cinder lists them (openstacksdk)."""
    return hub.cloud.volumes(**{"hub.jupyter.org/hub": hub.hub_id, "hub.jupyter.org/user": user})


def the_home_volume(hub, user):
    found = home_volumes(hub, user)
    assert len(found) == 1, f"{user} has {len(found)} home volumes: {found}"
    return found[0]


def volume_status(hub, volume_id):
    return hub.cloud.volume_status(volume_id)


def cleanup(hub, *users):
    """Stop the users' servers and delete their volumes (the project's quota is small)."""
    for user in users:
        if hub.server(user):
            hub.stop_server(user)
        for volume in home_volumes(hub, user):
            wait_for(lambda: volume_status(hub, volume.id) in ("available", "error", None),
                     60, 1, f"volume {volume.id} to be detached")
            hub.cloud.block_storage.delete_volume(volume.id, ignore_missing=True)


def cell(hub, user, code):
    """Run idempotent ``code`` in the user's server; its stdout.

    The harness returns at the shell's execute_reply, which now and then comes
    before the iopub stream: a cell that printed nothing is run again.
    """
    for _ in range(3):
        out = hub.run_cell(user, code)
        assert out["error"] is None and not out["died"], out
        if out["stdout"].strip() or "print(" not in code:
            break
    return out["stdout"].strip()


def test_a_file_in_home_survives_stop_and_start(hub):
    try:
        hub.start_server("vera")
        volume = the_home_volume(hub, "vera")
        assert volume.status == "in-use"
        assert volume.size == 1
        assert volume.metadata["hub.jupyter.org/managed-by"] == "magnum-spawner"
        # the home is the 1 GiB volume, not a directory of the host
        total = int(cell(hub, "vera", f"import shutil; print(shutil.disk_usage({HOME!r}).total)"))
        assert 0.85 * 2**30 < total <= 2**30, total
        cell(hub, "vera", f"open({HOME!r} + '/notes.txt', 'w').write('kept across restarts')")
        state = hub.api("GET", "/users/vera").json()["servers"][""]["state"]
        assert state["home_volume_id"] == volume.id

        hub.stop_server("vera")
        wait_for(lambda: volume_status(hub, volume.id) == "available", 60, 1,
                 "the volume to be detached")
        hub.start_server("vera")

        assert cell(hub, "vera", f"print(open({HOME!r} + '/notes.txt').read())") == (
            "kept across restarts"
        )
        assert the_home_volume(hub, "vera").id == volume.id  # the same volume, no second
        # detached from the first container, attached to a new one
        again = hub.api("GET", "/users/vera").json()["servers"][""]["state"]
        assert again["container_id"] != state["container_id"]
        assert hub.cloud.container(state["container_id"]) is None
    finally:
        cleanup(hub, "vera")


def test_two_users_never_see_each_others_files(hub):
    try:
        hub.start_server("wanda")
        hub.start_server("xena")
        cell(hub, "wanda", f"open({HOME!r} + '/wanda-secret.txt', 'w').write('only wanda')")
        cell(hub, "xena", f"open({HOME!r} + '/xena-secret.txt', 'w').write('only xena')")
        wanda = json.loads(cell(hub, "wanda", f"import os, json; print(json.dumps(sorted(os.listdir({HOME!r}))))"))
        xena = json.loads(cell(hub, "xena", f"import os, json; print(json.dumps(sorted(os.listdir({HOME!r}))))"))
        assert "wanda-secret.txt" in wanda and "xena-secret.txt" not in wanda
        assert "xena-secret.txt" in xena and "wanda-secret.txt" not in xena
        assert the_home_volume(hub, "wanda").id != the_home_volume(hub, "xena").id
    finally:
        cleanup(hub, "wanda", "xena")


def test_a_write_beyond_the_volume_size_fails_with_no_space(hub):
    code = f"""
import os
written = 0
try:
    with open({HOME!r} + '/big.bin', 'wb') as f:
        for _ in range(1200):
            f.write(b'x' * 2**20)
            written += 1
        f.flush()
        os.fsync(f.fileno())
    print('no error after', written, 'MiB')
except OSError as e:
    print(e.strerror, 'after', written, 'MiB')
finally:
    if os.path.exists({HOME!r} + '/big.bin'):
        os.remove({HOME!r} + '/big.bin')
"""
    try:
        hub.start_server("yuri")
        out = cell(hub, "yuri", code)
        assert out.startswith("No space left on device"), out
        written = int(out.split("after")[1].split()[0])
        assert 900 <= written < 1100, out  # the 1 GiB volume, not the host's disk
    finally:
        cleanup(hub, "yuri")


def test_deleting_a_user_keeps_the_volume_by_default(hub):
    try:
        hub.start_server("zoe")
        volume = the_home_volume(hub, "zoe")
        hub.stop_server("zoe")
        hub.delete_user("zoe")
        assert hub.user("zoe") is None
        wait_for(lambda: volume_status(hub, volume.id) == "available", 60, 1,
                 "the volume to be detached")
        # delete_home_volume_on_delete is off: the files stay for an administrator
        assert [v.id for v in home_volumes(hub, "zoe")] == [volume.id]
    finally:
        cleanup(hub, "zoe")


def test_deleting_a_user_deletes_the_volume_when_configured(hub_factory):
    hub = hub_factory("c.ZunSpawner.delete_home_volume_on_delete = True\n")
    try:
        hub.start_server("zed")
        volume = the_home_volume(hub, "zed")
        hub.stop_server("zed")
        hub.delete_user("zed")
        wait_for(lambda: volume_status(hub, volume.id) is None, 90, 1,
                 "Cinder to delete the volume")
        assert home_volumes(hub, "zed") == []
    finally:
        cleanup(hub, "zed")


def user_id(hub, name):
    """The hub's id of user ``name`` (JupyterHub's REST API does not show it)."""
    db = sqlite3.connect(f"file:{hub.workdir}/jupyterhub.sqlite?mode=ro", uri=True)
    try:
        return db.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()[0]
    finally:
        db.close()


def test_a_volume_the_hub_did_not_make_is_never_deleted(hub_factory):
    hub = hub_factory("c.ZunSpawner.delete_home_volume_on_delete = True\n")
    # an administrator prepared a volume for alma, with her id but without the
    # hub's managed-by mark: the hub uses it, and never deletes it
    hub.ensure_user("alma")
    made = hub.cloud.block_storage.create_volume(
        name="home-alma", size=1, metadata={"hub.jupyter.org/hub": hub.hub_id,
                                            "hub.jupyter.org/user-id": str(user_id(hub, "alma"))},
    )
    try:
        wait_for(lambda: volume_status(hub, made.id) == "available", 60, 1, "the volume")
        hub.start_server("alma")
        state = hub.api("GET", "/users/alma").json()["servers"][""]["state"]
        assert state["home_volume_id"] == made.id
        hub.stop_server("alma")
        hub.delete_user("alma")
        wait_for(lambda: volume_status(hub, made.id) == "available", 60, 1,
                 "the volume to be detached")
        assert volume_status(hub, made.id) == "available"
    finally:
        wait_for(lambda: volume_status(hub, made.id) in ("available", "error", None),
                 60, 1, "the volume to be detached")
        hub.cloud.block_storage.delete_volume(made.id, ignore_missing=True)


def test_a_renamed_users_home_never_goes_to_a_new_user_of_the_old_name(hub):
    # issue 17, item 1, through JupyterHub's own rename (PATCH /users/<name>)
    try:
        hub.start_server("rhea")
        bobs = the_home_volume(hub, "rhea")
        hub.stop_server("rhea")
        r = hub.api("PATCH", "/users/rhea", json={"name": "rhoda"})
        assert r.status_code == 200, r.text
        # a new person signs up with the old name
        hub.start_server("rhea")
        theirs = hub.api("GET", "/users/rhea").json()["servers"][""]["state"]
        assert theirs["home_volume_id"] != bobs.id, "the new rhea got the renamed user's home"
        hub.stop_server("rhea")
        # the renamed user still has theirs, now recorded under the new name
        hub.start_server("rhoda")
        state = hub.api("GET", "/users/rhoda").json()["servers"][""]["state"]
        assert state["home_volume_id"] == bobs.id
        assert [v.id for v in home_volumes(hub, "rhoda")] == [bobs.id]
    finally:
        cleanup(hub, "rhea", "rhoda")
