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

# The repository stays importable by DevStack's setup_develop through its
# setup.cfg (name only; pyproject.toml has the rest).  No other pip_install:
# DevStack constrains every install by upper-constraints, and the integration
# suite installs its own clients (make venv).
function install_magnum_spawner {
    setup_develop "$MAGNUM_SPAWNER_DIR"
    if ! command -v configurable-http-proxy >/dev/null; then
        sudo npm install -g configurable-http-proxy@5
    fi
}

# An address as the host part of a URL: IPv6 literals in brackets.
function _jupyterhub_url_host {
    if [[ "$1" == *:* ]]; then echo "[$1]"; else echo "$1"; fi
}

# The public network's gateway, which DevStack puts on br-ex: the containers
# reach the hub (through their router) at it.  IPv4 first: with DevStack's
# IP_VERSION=4+6 the network has a subnet of each, listed in any order.
function _jupyterhub_public_gateway {
    if [[ -n "${PUBLIC_NETWORK_GATEWAY:-}" ]]; then
        echo "$PUBLIC_NETWORK_GATEWAY"
        return 0
    fi
    local subnet version
    for version in 4 6; do
        subnet=$("${_JH_ADMIN[@]}" subnet list --network "$PUBLIC_NETWORK_NAME" \
            --ip-version "$version" -f value -c ID | head -n 1)
        if [[ -n "$subnet" ]]; then
            "${_JH_ADMIN[@]}" subnet show "$subnet" -f value -c gateway_ip
            return 0
        fi
    done
    die $LINENO "network $PUBLIC_NETWORK_NAME has no subnet: the hub has no address for the containers"
}

function _jupyterhub_project_id {
    "${_JH_ADMIN[@]}" project show "$JUPYTERHUB_PROJECT" --domain default -f value -c id 2>/dev/null
}

# The hub user's own password session (application credentials are made by
# their user, for itself).  The password ($_jh_password, the caller's local)
# goes through the environment, never the command line; the caller turns
# xtrace off.
function _jupyterhub_as_user {
    OS_PASSWORD=$_jh_password openstack --os-auth-url "$KEYSTONE_SERVICE_URI" \
        --os-identity-api-version 3 --os-region-name "$REGION_NAME" \
        ${JUPYTERHUB_CACERT:+--os-cacert "$JUPYTERHUB_CACERT"} \
        --os-username "$JUPYTERHUB_OS_USER" --os-user-domain-id default \
        --os-project-name "$JUPYTERHUB_PROJECT" --os-project-domain-id default "$@"
}

# A random secret in FILE (mode 0600), made once: $1 file, $2 bytes.
function _jupyterhub_secret_file {
    [[ -s "$1" ]] || (umask 077; python3 -c \
        "import secrets; print(secrets.token_urlsafe($2))" >"$1")
}

# No secret in any log: stack.sh runs with xtrace into devstacklog.txt, so the
# passwords and the credential's secret are handled with xtrace off, in locals
# only (Zun's plugin.sh dumps every global variable with `set`).
function create_jupyterhub_accounts {
    local project_id user_id cred xtrace _jh_password
    sudo install -d -o "$STACK_USER" "$JUPYTERHUB_STATE_DIR"
    project_id=$(get_or_create_project "$JUPYTERHUB_PROJECT" default)
    xtrace=$(set +o | grep xtrace)
    set +o xtrace
    _jh_password=$JUPYTERHUB_OS_PASSWORD
    if [[ -z "$_jh_password" ]]; then
        _jupyterhub_secret_file "$JUPYTERHUB_STATE_DIR/os_password" 24
        _jh_password=$(<"$JUPYTERHUB_STATE_DIR/os_password")
    fi
    user_id=$(get_or_create_user "$JUPYTERHUB_OS_USER" "$_jh_password" default)
    # a user kept from an earlier stack gets this password too
    "${_JH_ADMIN[@]}" user set --password "$_jh_password" "$user_id"
    $xtrace
    get_or_add_user_project_role member "$user_id" "$project_id" >/dev/null
    # the secret is shown only at creation: make a new credential on every stack
    _jupyterhub_delete_credential
    set +o xtrace
    # `-f value` prints the columns in the command's (sorted) order: id, secret
    cred=$(_jupyterhub_as_user application credential create "$JUPYTERHUB_APP_CREDENTIAL" \
        --description "magnum-spawner DevStack hub" -f value -c id -c secret)
    write_jupyterhub_clouds_yaml "${cred%%$'\n'*}" "${cred#*$'\n'}"
    $xtrace
}

function _jupyterhub_delete_credential {
    local xtrace _jh_password
    xtrace=$(set +o | grep xtrace)
    set +o xtrace
    _jh_password=${JUPYTERHUB_OS_PASSWORD:-$(cat "$JUPYTERHUB_STATE_DIR/os_password" 2>/dev/null)}
    _jupyterhub_as_user application credential delete "$JUPYTERHUB_APP_CREDENTIAL" \
        >/dev/null 2>&1 || true
    $xtrace
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
${JUPYTERHUB_CACERT:+    cacert: ${JUPYTERHUB_CACERT}}
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

# OpenDev's nodes (and many hosts) reject new inbound connections in an
# `openstack-INPUT` chain: let the containers' calls to the hub's API port in
# from the public network (their router's address) to the gateway, and only
# that.  Nothing is changed on a host without that chain.
function _jupyterhub_firewall_rule {
    local gateway=$1 cmd=iptables range=${FLOATING_RANGE:-172.24.4.0/24}
    if [[ "$gateway" == *:* ]]; then
        cmd=ip6tables range=${IPV6_PUBLIC_RANGE:-2001:db8::/64}
    fi
    echo "$cmd openstack-INPUT -i ${PUBLIC_BRIDGE:-br-ex} -s $range -d $gateway -p tcp" \
        "--dport $JUPYTERHUB_HUB_PORT -m comment --comment magnum-spawner-hub -j ACCEPT"
}

function open_jupyterhub_firewall {
    local cmd chain rule
    read -r cmd chain rule <<<"$(_jupyterhub_firewall_rule "$1")"
    sudo "$cmd" -S "$chain" >/dev/null 2>&1 || return 0
    # shellcheck disable=SC2086  # the rule is words
    sudo "$cmd" -C "$chain" $rule 2>/dev/null || sudo "$cmd" -I "$chain" $rule
    echo "$1" >"$JUPYTERHUB_STATE_DIR/firewall"
}

function close_jupyterhub_firewall {
    local cmd chain rule
    [[ -f "$JUPYTERHUB_STATE_DIR/firewall" ]] || return 0
    read -r cmd chain rule <<<"$(_jupyterhub_firewall_rule "$(cat "$JUPYTERHUB_STATE_DIR/firewall")")"
    # shellcheck disable=SC2086
    while sudo "$cmd" -C "$chain" $rule 2>/dev/null; do
        sudo "$cmd" -D "$chain" $rule
    done
    rm -f "$JUPYTERHUB_STATE_DIR/firewall"
}

function configure_magnum_spawner {
    sudo install -d -o "$STACK_USER" "$JUPYTERHUB_CONF_DIR" "$JUPYTERHUB_STATE_DIR"
    local gateway hub_url
    gateway=$(_jupyterhub_public_gateway)
    hub_url="http://$(_jupyterhub_url_host "$gateway")"
    open_jupyterhub_firewall "$gateway"
    # the login passwords: made here, read by the hub from its state directory,
    # never in a command line or a log
    _jupyterhub_secret_file "$JUPYTERHUB_STATE_DIR/user_password" 12
    _jupyterhub_secret_file "$JUPYTERHUB_STATE_DIR/admin_password" 32
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
c.JupyterHub.hub_ip = "${JUPYTERHUB_HUB_IP:-$gateway}"
c.JupyterHub.hub_connect_url = (
    "${hub_url}:" + os.environ.get("LOCAL_HUB_API_PORT", "${JUPYTERHUB_HUB_PORT}")
)
PYEOF
    cat >"$JUPYTERHUB_CONF_DIR/jupyterhub_config.py" <<PYEOF
# Written by the magnum-spawner DevStack plugin.  systemd starts the hub in /
# with PATH only: every file it writes is named here, under its state directory.
import os
from pathlib import Path

c = get_config()  # noqa
state = Path("${JUPYTERHUB_STATE_DIR}")
os.environ["OS_CLIENT_CONFIG_FILE"] = "${JUPYTERHUB_CLOUDS_YAML}"
c.JupyterHub.bind_url = "http://$(_jupyterhub_url_host "$JUPYTERHUB_BIND_IP"):${JUPYTERHUB_PORT}"
c.JupyterHub.hub_port = ${JUPYTERHUB_HUB_PORT}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:${JUPYTERHUB_PROXY_API_PORT}"
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = str(state / "cookie_secret")
# Any user name with the shared password (state/user_password); "admin" with
# state/admin_password.  On a VM others can reach, put a real authenticator here.
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = (state / "user_password").read_text().strip()
c.SharedPasswordAuthenticator.admin_password = (state / "admin_password").read_text().strip()
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}
c.JupyterHub.spawner_class = "zun"
c.ZunSpawner.hub_id = "devstack"
load_subconfig("${JUPYTERHUB_CONF_DIR}/spawner_config.py")  # noqa
PYEOF
}

# No environment string: DevStack's unit keeps its Environment="PATH=..." only
# when run_process gets none (iniset replaces the key).
function start_magnum_spawner {
    run_process jupyterhub "$(command -v jupyterhub) -f $JUPYTERHUB_CONF_DIR/jupyterhub_config.py"
}

function stop_magnum_spawner {
    stop_process jupyterhub
}

# What is left in the hub's project, one "kind id" a line.
function _jupyterhub_leftovers {
    local project_id=$1 id
    for id in $("${_JH_ADMIN[@]}" volume list --project "$project_id" -f value -c ID); do
        echo "volume $id"
    done
    for id in $("${_JH_ADMIN[@]}" floating ip list --project "$project_id" -f value -c ID); do
        echo "floating-ip $id"
    done
}

# Everything in the hub's project, then the project itself.  Runs at unstack,
# after Zun's plugin stopped Zun and Docker (plugins unstack in registration
# order) but while Keystone, Cinder and Neutron still answer: nothing here waits
# on Zun, and the project is deleted only when nothing is left in it.
function cleanup_jupyterhub_cloud {
    local project_id id ids status
    project_id=$(_jupyterhub_project_id) || return 0
    [[ -n "$project_id" ]] || return 0
    # Zun answers only if it was not stopped before us (then its containers go)
    if ids=$(OS_CLIENT_CONFIG_FILE=$JUPYTERHUB_CLOUDS_YAML \
            openstack --os-cloud "$JUPYTERHUB_CLOUD" appcontainer list -f value -c uuid \
            2>/dev/null); then
        for id in $ids; do
            OS_CLIENT_CONFIG_FILE=$JUPYTERHUB_CLOUDS_YAML timeout 120 \
                openstack --os-cloud "$JUPYTERHUB_CLOUD" appcontainer delete --stop --wait "$id" || true
        done
    fi
    for id in $("${_JH_ADMIN[@]}" floating ip list --project "$project_id" -f value -c ID); do
        "${_JH_ADMIN[@]}" floating ip delete "$id" || true
    done
    # A home volume is still attached to its (stopped) container: Zun is gone,
    # so Cinder is told it is detached (admin reset), then it is deleted.
    while read -r id status; do
        [[ -n "$id" ]] || continue
        if [[ "$status" != available && "$status" != error* ]]; then
            "${_JH_ADMIN[@]}" volume set --state available --detached "$id" || true
        fi
        "${_JH_ADMIN[@]}" volume delete "$id" || true
    done < <("${_JH_ADMIN[@]}" volume list --project "$project_id" -f value -c ID -c Status)
    # Cinder deletes in the background: a minute at most for all of them
    local tries=0
    while ((tries++ < 30)) && "${_JH_ADMIN[@]}" volume list --project "$project_id" \
            -f value -c Status | grep -qx deleting; do
        sleep 2
    done
    "${_JH_ADMIN[@]}" router remove subnet "$JUPYTERHUB_ROUTER" "$JUPYTERHUB_NETWORK-subnet" \
        2>/dev/null || true
    "${_JH_ADMIN[@]}" router delete "$JUPYTERHUB_ROUTER" 2>/dev/null || true
    # ports of containers Zun did not delete would keep the network
    for id in $("${_JH_ADMIN[@]}" port list --network "$JUPYTERHUB_NETWORK" -f value -c ID \
            2>/dev/null); do
        "${_JH_ADMIN[@]}" port delete "$id" || true
    done
    "${_JH_ADMIN[@]}" network delete "$JUPYTERHUB_NETWORK" 2>/dev/null || true
    for id in $("${_JH_ADMIN[@]}" security group list --project "$project_id" -f value -c ID); do
        "${_JH_ADMIN[@]}" security group delete "$id" 2>/dev/null || true
    done
    local left
    left=$(_jupyterhub_leftovers "$project_id")
    if [[ -n "$left" ]]; then
        warn "magnum-spawner: project $JUPYTERHUB_PROJECT ($project_id) is kept, with its" \
            "user and credential: these could not be deleted: ${left//$'\n'/, }"
        return 0
    fi
    # The credential by its user (Keystone's own delete, with its roles), then
    # the user: the user's bulk delete relies on the database's cascades.
    _jupyterhub_delete_credential
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
        close_jupyterhub_firewall
        if [[ "$JUPYTERHUB_CLEANUP_ON_UNSTACK" == "True" ]]; then
            cleanup_jupyterhub_cloud
        fi
    fi
    if [[ "$1" == "clean" ]]; then
        sudo rm -rf "$JUPYTERHUB_CONF_DIR" "$JUPYTERHUB_STATE_DIR"
    fi
fi
