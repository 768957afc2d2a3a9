"""Credentials: clouds.yaml, application credentials, OS_* and explicit auth."""

import json
import logging

import pytest

from magnum_spawner.common import cloud as cloud_context, errors

from .conftest import PASSWORD_AUTH
from .helpers import make_spawner
from .recorded import KEYSTONE, ZUN, CONTAINER_UUID


def write_clouds(tmp_path, monkeypatch, clouds):
    path = tmp_path / "clouds.yaml"
    path.write_text(json.dumps({"clouds": clouds}))  # JSON is valid YAML
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    return path


def token_request(cloud):
    return cloud.requests("POST", "auth/tokens")[-1].json()["auth"]


async def test_password_auth_from_clouds_yaml(cloud, tmp_path, monkeypatch):
    write_clouds(tmp_path, monkeypatch, {
        "mycloud": {"auth": PASSWORD_AUTH, "region_name": "RegionOne"},
    })
    spawner = make_spawner(config={"auth": {}, "cloud": "mycloud"})
    cloud.reply("GET", f"{ZUN}/v1/containers/{CONTAINER_UUID}", "zun-container-show-running")
    await spawner.zun.get(CONTAINER_UUID)
    sent = token_request(cloud)
    assert sent["identity"]["methods"] == ["password"]
    assert sent["identity"]["password"]["user"]["name"] == "jhubuser"
    assert sent["scope"]["project"]["name"] == "jhub"


async def test_application_credential_from_clouds_yaml(cloud, tmp_path, monkeypatch):
    write_clouds(tmp_path, monkeypatch, {
        "appcred": {
            "auth_type": "v3applicationcredential",
            "auth": {
                "auth_url": f"{KEYSTONE}/v3",
                "application_credential_id": "0123abcd",
                "application_credential_secret": "very-secret",
            },
        },
    })
    spawner = make_spawner(config={"auth": {}, "cloud": "appcred"})
    cloud.reply("GET", f"{ZUN}/v1/containers/{CONTAINER_UUID}", "zun-container-show-running")
    await spawner.zun.get(CONTAINER_UUID)
    sent = token_request(cloud)
    assert sent["identity"]["methods"] == ["application_credential"]
    assert sent["identity"]["application_credential"] == {
        "id": "0123abcd", "secret": "very-secret",
    }


async def test_os_environment_variables(cloud, monkeypatch):
    monkeypatch.setenv("OS_AUTH_URL", f"{KEYSTONE}/v3")
    monkeypatch.setenv("OS_AUTH_TYPE", "v3applicationcredential")
    monkeypatch.setenv("OS_APPLICATION_CREDENTIAL_ID", "env-id")
    monkeypatch.setenv("OS_APPLICATION_CREDENTIAL_SECRET", "env-secret")
    spawner = make_spawner(config={"auth": {}})
    cloud.reply("GET", f"{ZUN}/v1/containers/{CONTAINER_UUID}", "zun-container-show-running")
    await spawner.zun.get(CONTAINER_UUID)
    assert token_request(cloud)["identity"]["application_credential"]["id"] == "env-id"


def test_clouds_yaml_wins_over_environment_which_wins_over_auth(monkeypatch):
    assert cloud_context.choose_source("c", {"x": 1}, {"OS_AUTH_URL": "u"}) == "cloud"
    assert cloud_context.choose_source(None, {"x": 1}, {"OS_AUTH_URL": "u"}) == "environment"
    assert cloud_context.choose_source(None, {"x": 1}, {"OS_CLOUD": "c"}) == "environment"
    assert cloud_context.choose_source(None, {"x": 1}, {}) == "auth"
    assert cloud_context.choose_source(None, None, {}) is None


async def test_explicit_application_credential_auth_dict(cloud):
    spawner = make_spawner(config={"auth": {
        "auth_url": f"{KEYSTONE}/v3",
        "application_credential_id": "dict-id",
        "application_credential_secret": "dict-secret",
    }})
    cloud.reply("GET", f"{ZUN}/v1/containers/{CONTAINER_UUID}", "zun-container-show-running")
    await spawner.zun.get(CONTAINER_UUID)
    assert token_request(cloud)["identity"]["methods"] == ["application_credential"]


def test_missing_cloud_is_one_clear_sentence(tmp_path, monkeypatch):
    write_clouds(tmp_path, monkeypatch, {"other": {"auth": PASSWORD_AUTH}})
    with pytest.raises(errors.CloudConfigError) as info:
        cloud_context.load_cloud(cloud="nosuchcloud")
    assert str(info.value) == "cloud config: cloud 'nosuchcloud': Cloud nosuchcloud was not found."
    assert info.value.__cause__ is None


def test_incomplete_auth_names_what_is_missing():
    with pytest.raises(errors.CloudConfigError, match="ZunSpawner.auth: .*auth_url"):
        cloud_context.load_cloud(auth={"username": "u", "password": "hunter2"})


def test_no_credentials_at_all():
    with pytest.raises(errors.CloudConfigError, match="no OpenStack credentials"):
        cloud_context.load_cloud()


async def test_wrong_password_is_a_clear_error_without_the_secret(cloud, caplog):
    cloud.reply("POST", f"{KEYSTONE}/v3/auth/tokens", "keystone-token-wrong-password")
    spawner = make_spawner()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(errors.AuthenticationFailed) as info:
        await spawner.zun.ensure_version()
    assert "Keystone refused the credentials" in str(info.value)
    assert "s3cret-pw" not in str(info.value)
    assert "s3cret-pw" not in caplog.text


async def test_wrong_password_reaches_the_spawn_page_as_a_sentence(cloud):
    cloud.reply("POST", f"{KEYSTONE}/v3/auth/tokens", "keystone-token-wrong-password")
    spawner = make_spawner()
    with pytest.raises(Exception) as info:
        await spawner.start()
    assert info.value.status_code == 500
    assert info.value.message == "The hub cannot log in to its cloud; tell your administrator."
    assert "Keystone refused" in info.value.log_message
    assert "s3cret-pw" not in info.value.log_message


async def test_one_session_and_one_token_for_all_spawners(cloud):
    cloud.reply("GET", f"{ZUN}/v1/containers/{CONTAINER_UUID}", "zun-container-show-running")
    spawners = [make_spawner(name) for name in ("alice", "bob", "carol")]
    for s in spawners:
        await s.zun.get(CONTAINER_UUID)
    assert len({id(s.zun) for s in spawners}) == 1
    assert cloud.token_requests == 1


async def test_a_missing_cloud_stops_the_spawn_with_one_line_naming_it(cloud):
    spawner = make_spawner(config={"auth": {}, "cloud": "nosuchcloud"})
    with pytest.raises(Exception) as info:
        await spawner.start()
    assert info.value.message == "The hub cannot log in to its cloud; tell your administrator."
    assert "cloud 'nosuchcloud': Cloud nosuchcloud was not found." in info.value.log_message
    assert "\n" not in info.value.log_message
    assert not cloud.requests(pattern="9517")
