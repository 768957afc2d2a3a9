"""The example configuration in etc/ loads and builds a spawner."""

import pathlib

from traitlets.config import PyFileConfigLoader

from .helpers import make_spawner

ETC = pathlib.Path(__file__).parents[1] / "etc"


def load(name, monkeypatch=None):
    return PyFileConfigLoader(name, path=str(ETC)).load_config()


def test_example_hub_config_builds_a_spawner():
    config = load("jupyterhub_config.py")
    assert config.JupyterHub.spawner_class == "zun"
    spawner = make_spawner(config=dict(config.ZunSpawner))
    assert spawner.cloud == "jupyterhub"
    assert spawner.home_volume_size == 1
    assert spawner.network == "jupyter-net"


def test_local_hub_config_builds_a_spawner(monkeypatch, tmp_path):
    monkeypatch.setenv("LOCAL_HUB_DIR", str(tmp_path))
    config = load("local_jupyterhub_config.py")
    assert config.JupyterHub.ip == "127.0.0.1" and config.JupyterHub.hub_ip == "127.0.0.1"
    spawner = make_spawner(config=dict(config.ZunSpawner))
    assert spawner.cloud == "local"
    assert spawner.image == "quay.io/jupyter/base-notebook"
