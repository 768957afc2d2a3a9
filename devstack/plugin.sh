#!/bin/bash
# DevStack plugin: JupyterHub with magnum-spawner against the DevStack cloud's
# Zun and Cinder.  Phases follow DevStack's plugin contract; see devstack/settings.

function install_magnum_spawner {
    setup_develop "$MAGNUM_SPAWNER_DIR"
    pip_install "jupyterhub>=5"
    if ! command -v configurable-http-proxy >/dev/null; then
        install_package npm
        sudo npm install -g configurable-http-proxy@5
    fi
}

function configure_magnum_spawner {
    sudo install -d -o "$STACK_USER" "$JUPYTERHUB_CONF_DIR" "$JUPYTERHUB_STATE_DIR"
    local hub_ip
    hub_ip=${HOST_IP:-127.0.0.1}
    cat >"$JUPYTERHUB_CONF_DIR/jupyterhub_config.py" <<PYEOF
# Written by the magnum-spawner DevStack plugin.
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://0.0.0.0:${JUPYTERHUB_PORT}"
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_port = ${JUPYTERHUB_HUB_PORT}
# containers reach the hub at the DevStack host's address
c.JupyterHub.hub_connect_url = "http://${hub_ip}:${JUPYTERHUB_HUB_PORT}"
c.JupyterHub.db_url = "sqlite:///${JUPYTERHUB_STATE_DIR}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "${JUPYTERHUB_STATE_DIR}/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "${ADMIN_PASSWORD}"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}
c.JupyterHub.spawner_class = "zun"
c.ZunSpawner.cloud = "${JUPYTERHUB_CLOUD}"
c.ZunSpawner.hub_id = "devstack"
c.ZunSpawner.image = "${JUPYTERHUB_IMAGE}"
c.ZunSpawner.network = "${JUPYTERHUB_NETWORK}"
c.ZunSpawner.start_timeout = 600   # the first pull of the image is slow
PYEOF
}

function raise_cinder_quota {
    # one home volume per user: the default of 10 volumes would be 10 users
    openstack --os-cloud devstack-admin quota set \
        --volumes "$JUPYTERHUB_VOLUME_QUOTA" --gigabytes "$JUPYTERHUB_VOLUME_QUOTA" demo
}

function start_magnum_spawner {
    run_process jupyterhub "$(which jupyterhub) -f $JUPYTERHUB_CONF_DIR/jupyterhub_config.py" \
        "" "" "OS_CLIENT_CONFIG_FILE=/etc/openstack/clouds.yaml"
}

function stop_magnum_spawner {
    stop_process jupyterhub
}

if is_service_enabled jupyterhub; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing magnum-spawner"
        install_magnum_spawner
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring JupyterHub with magnum-spawner"
        configure_magnum_spawner
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        raise_cinder_quota
        start_magnum_spawner
    elif [[ "$1" == "stack" && "$2" == "test-config" ]]; then
        :
    fi
    if [[ "$1" == "unstack" ]]; then
        stop_magnum_spawner
    fi
    if [[ "$1" == "clean" ]]; then
        sudo rm -rf "$JUPYTERHUB_CONF_DIR" "$JUPYTERHUB_STATE_DIR"
    fi
fi
