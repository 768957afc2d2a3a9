#!/bin/bash
# DevStack plugin: JupyterHub with magnum-spawner against the DevStack cloud's
# Zun and Cinder.  Phases follow DevStack's plugin contract (stack install /
# post-config / extra, unstack, clean); settings in devstack/settings.
#
# At `stack extra` (Keystone, Neutron, Zun and Cinder are up) it gives the hub
# an identity of its own: project $JUPYTERHUB_PROJECT, user $JUPYTERHUB_OS_USER
# (member), an application credential of that user written to
# $JUPYTERHUB_CLOUDS_YAML, raised quotas, and a network with a router to the
# public network for floating IPs.  `unstack` removes all of it.

# Admin actions go through DevStack's own clouds.yaml entries.
_JH_ADMIN=(openstack --os-cloud devstack-admin)

function install_magnum_spawner {
    setup_develop "$MAGNUM_SPAWNER_DIR"
    # the integration suite checks the cloud through python-zunclient
    pip_install "jupyterhub>=5" "python-zunclient==5.5.0"
    if ! command -v configurable-http-proxy >/dev/null; then
        install_package npm
        sudo npm install -g configurable-http-proxy@5
    fi
}

# The public subnet's gateway: DevStack puts this address on br-ex, so the
# containers reach the hub (through their router) at it.
function _jupyterhub_public_gateway {
    local subnet
    subnet=$("${_JH_ADMIN[@]}" network show "$PUBLIC_NETWORK_NAME" -f value -c subnets \
        | tr -d "[]',\"" | awk '{print $1}')
    "${_JH_ADMIN[@]}" subnet show "$subnet" -f value -c gateway_ip
}

function _jupyterhub_project_id {
    "${_JH_ADMIN[@]}" project show "$JUPYTERHUB_PROJECT" --domain default -f value -c id 2>/dev/null
}

# The hub user's own password session (application credentials are made by
# their user, for itself).
function _jupyterhub_as_user {
    openstack --os-auth-url "$KEYSTONE_SERVICE_URI" --os-identity-api-version 3 \
        --os-region-name "$REGION_NAME" \
        --os-username "$JUPYTERHUB_OS_USER" --os-password "$JUPYTERHUB_OS_PASSWORD" \
        --os-user-domain-id default \
        --os-project-name "$JUPYTERHUB_PROJECT" --os-project-domain-id default "$@"
}

function create_jupyterhub_accounts {
    local project_id user_id cred
    project_id=$(get_or_create_project "$JUPYTERHUB_PROJECT" default)
    user_id=$(get_or_create_user "$JUPYTERHUB_OS_USER" "$JUPYTERHUB_OS_PASSWORD" default)
    get_or_add_user_project_role member "$user_id" "$project_id" >/dev/null
    # the secret is shown only at creation: make a new credential on every stack
    _jupyterhub_as_user application credential delete "$JUPYTERHUB_APP_CREDENTIAL" \
        2>/dev/null || true
    cred=$(_jupyterhub_as_user application credential create "$JUPYTERHUB_APP_CREDENTIAL" \
        --description "magnum-spawner DevStack hub" -f value -c id -c secret)
    write_jupyterhub_clouds_yaml "$(sed -n 1p <<<"$cred")" "$(sed -n 2p <<<"$cred")"
}

function write_jupyterhub_clouds_yaml {
    local cred_id=$1 cred_secret=$2
    sudo install -d -o "$STACK_USER" "$(dirname "$JUPYTERHUB_CLOUDS_YAML")"
    # 0600 from the start: the secret is never world-readable
    (umask 077; cat >"$JUPYTERHUB_CLOUDS_YAML" <<YAMLEOF
# Written by the magnum-spawner DevStack plugin: the hub's application credential.
clouds:
  ${JUPYTERHUB_CLOUD}:
    auth_type: v3applicationcredential
    auth:
      auth_url: ${KEYSTONE_SERVICE_URI}
      application_credential_id: ${cred_id}
      application_credential_secret: ${cred_secret}
    region_name: ${REGION_NAME}
    interface: public
    identity_api_version: 3
YAMLEOF
    )
}

function raise_jupyterhub_quotas {
    local project_id n=$JUPYTERHUB_MAX_SERVERS
    project_id=$(_jupyterhub_project_id)
    # Zun: containers, vCPUs, MiB, disk GiB
    "${_JH_ADMIN[@]}" appcontainer quota update \
        --containers "$n" --cpu $((n * JUPYTERHUB_SERVER_CPU)) \
        --memory $((n * JUPYTERHUB_SERVER_MEMORY)) --disk $((n * 10)) "$project_id"
    # Cinder: one home volume per user; Neutron: a floating IP per server, and a
    # security group (3 rules) per container for Zun's exposed_ports
    "${_JH_ADMIN[@]}" quota set \
        --volumes $((n * 2)) --gigabytes $((n * 2 * JUPYTERHUB_HOME_GB)) \
        --floating-ips $((n + 5)) --secgroups $((n + 10)) \
        --secgroup-rules $((n * 5 + 100)) --ports $((n * 2 + 10)) \
        "$project_id"
}

function create_jupyterhub_network {
    local project_id
    project_id=$(_jupyterhub_project_id)
    "${_JH_ADMIN[@]}" network show "$JUPYTERHUB_NETWORK" >/dev/null 2>&1 && return 0
    "${_JH_ADMIN[@]}" network create --project "$project_id" "$JUPYTERHUB_NETWORK" >/dev/null
    "${_JH_ADMIN[@]}" subnet create --project "$project_id" --network "$JUPYTERHUB_NETWORK" \
        --subnet-range "$JUPYTERHUB_SUBNET_RANGE" "$JUPYTERHUB_NETWORK-subnet" >/dev/null
    "${_JH_ADMIN[@]}" router create --project "$project_id" \
        --external-gateway "$PUBLIC_NETWORK_NAME" "$JUPYTERHUB_ROUTER" >/dev/null
    "${_JH_ADMIN[@]}" router add subnet "$JUPYTERHUB_ROUTER" "$JUPYTERHUB_NETWORK-subnet"
}

function configure_magnum_spawner {
    sudo install -d -o "$STACK_USER" "$JUPYTERHUB_CONF_DIR" "$JUPYTERHUB_STATE_DIR"
    local gateway
    gateway=$(_jupyterhub_public_gateway)
    cat >"$JUPYTERHUB_CONF_DIR/spawner_config.py" <<PYEOF
# Written by the magnum-spawner DevStack plugin: how the hub uses this cloud.
# Loaded by jupyterhub_config.py and by devstack/integration-tests' hubs.
import os

c = get_config()  # noqa
c.ZunSpawner.cloud = "${JUPYTERHUB_CLOUD}"
c.ZunSpawner.image = "${JUPYTERHUB_IMAGE}"
c.ZunSpawner.network = "${JUPYTERHUB_NETWORK}"
# The host reaches the public network (br-ex), not the tenant network: the
# server gets a floating IP, and its port is opened by Zun's exposed_ports.
c.ZunSpawner.server_access = "${JUPYTERHUB_SERVER_ACCESS}"
c.ZunSpawner.floating_ip_network = "${PUBLIC_NETWORK_NAME}"
c.ZunSpawner.exposed_ports = [8888]
c.ZunSpawner.start_timeout = 600   # the first pull of the image is slow
# containers reach the hub at br-ex's address, through their router
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_url = (
    "http://${gateway}:" + os.environ.get("LOCAL_HUB_API_PORT", "${JUPYTERHUB_HUB_PORT}")
)
PYEOF
    cat >"$JUPYTERHUB_CONF_DIR/jupyterhub_config.py" <<PYEOF
# Written by the magnum-spawner DevStack plugin.
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://0.0.0.0:${JUPYTERHUB_PORT}"
c.JupyterHub.hub_port = ${JUPYTERHUB_HUB_PORT}
c.JupyterHub.db_url = "sqlite:///${JUPYTERHUB_STATE_DIR}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "${JUPYTERHUB_STATE_DIR}/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "${ADMIN_PASSWORD}"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}
c.JupyterHub.spawner_class = "zun"
c.ZunSpawner.hub_id = "devstack"
load_subconfig("${JUPYTERHUB_CONF_DIR}/spawner_config.py")  # noqa
PYEOF
}

function start_magnum_spawner {
    run_process jupyterhub "$(command -v jupyterhub) -f $JUPYTERHUB_CONF_DIR/jupyterhub_config.py" \
        "" "" "OS_CLIENT_CONFIG_FILE=$JUPYTERHUB_CLOUDS_YAML"
}

function stop_magnum_spawner {
    stop_process jupyterhub
}

# Everything in the hub's project, then the project itself.  Runs at unstack,
# while the APIs still answer; each step tolerates what is already gone.
function cleanup_jupyterhub_cloud {
    local project_id id
    project_id=$(_jupyterhub_project_id) || return 0
    [[ -n "$project_id" ]] || return 0
    for id in $(OS_CLIENT_CONFIG_FILE=$JUPYTERHUB_CLOUDS_YAML \
            openstack --os-cloud "$JUPYTERHUB_CLOUD" appcontainer list -f value -c uuid \
            2>/dev/null); do
        OS_CLIENT_CONFIG_FILE=$JUPYTERHUB_CLOUDS_YAML \
            openstack --os-cloud "$JUPYTERHUB_CLOUD" appcontainer delete --stop --wait "$id" || true
    done
    for id in $("${_JH_ADMIN[@]}" floating ip list --project "$project_id" -f value -c ID); do
        "${_JH_ADMIN[@]}" floating ip delete "$id" || true
    done
    # volumes detach once Zun has deleted their containers
    for id in $("${_JH_ADMIN[@]}" volume list --project "$project_id" -f value -c ID); do
        local tries=0
        while [[ $tries -lt 60 ]] && [[ "$("${_JH_ADMIN[@]}" volume show "$id" -f value \
                -c status 2>/dev/null)" == "in-use" ]]; do
            sleep 2
            tries=$((tries + 1))
        done
        "${_JH_ADMIN[@]}" volume delete "$id" || true
    done
    "${_JH_ADMIN[@]}" router remove subnet "$JUPYTERHUB_ROUTER" "$JUPYTERHUB_NETWORK-subnet" \
        2>/dev/null || true
    "${_JH_ADMIN[@]}" router delete "$JUPYTERHUB_ROUTER" 2>/dev/null || true
    # Zun's per-container security groups (exposed_ports) go with their
    # containers; any left would block the network's ports from going
    for id in $("${_JH_ADMIN[@]}" port list --network "$JUPYTERHUB_NETWORK" -f value -c ID \
            2>/dev/null); do
        "${_JH_ADMIN[@]}" port delete "$id" || true
    done
    "${_JH_ADMIN[@]}" network delete "$JUPYTERHUB_NETWORK" 2>/dev/null || true
    for id in $("${_JH_ADMIN[@]}" security group list --project "$project_id" -f value -c ID); do
        "${_JH_ADMIN[@]}" security group delete "$id" 2>/dev/null || true
    done
    _jupyterhub_as_user application credential delete "$JUPYTERHUB_APP_CREDENTIAL" \
        2>/dev/null || true
    "${_JH_ADMIN[@]}" user delete --domain default "$JUPYTERHUB_OS_USER" 2>/dev/null || true
    "${_JH_ADMIN[@]}" project delete --domain default "$JUPYTERHUB_PROJECT" 2>/dev/null || true
}

if is_service_enabled jupyterhub; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing magnum-spawner"
        install_magnum_spawner
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        # Keystone, Neutron, Zun and Cinder answer from here on
        echo_summary "Creating the hub's project, user, credential, quotas and network"
        create_jupyterhub_accounts
        raise_jupyterhub_quotas
        create_jupyterhub_network
        echo_summary "Configuring and starting JupyterHub with magnum-spawner"
        configure_magnum_spawner
        start_magnum_spawner
    fi
    if [[ "$1" == "unstack" ]]; then
        stop_magnum_spawner
        if [[ "$JUPYTERHUB_CLEANUP_ON_UNSTACK" == "True" ]]; then
            cleanup_jupyterhub_cloud
        fi
    fi
    if [[ "$1" == "clean" ]]; then
        sudo rm -rf "$JUPYTERHUB_CONF_DIR" "$JUPYTERHUB_STATE_DIR"
    fi
fi
