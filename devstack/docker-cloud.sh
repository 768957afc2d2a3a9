#!/usr/bin/env bash
# shellcheck shell=bash
# The Docker path of devstack/local-cloud, sourced by it: upstream Zun's own
# `docker` container and image drivers on Debian's Docker Engine, on two compute
# hosts in two availability zones.
#
# - Each host is a Docker daemon under $DIR/docker/<host>/ (devstack/docker-host:
#   own data root, exec root, socket, pid file; its own UTS namespace, so its
#   `docker info` Name, which Zun's driver reports, is <host>) and a zun-compute
#   with its own zun-<host>.conf ([DEFAULT] host, default_availability_zone,
#   [docker] api_url, [volume] volume_dir).
# - Images come from a local registry (Debian's docker-registry on
#   127.0.0.1:$REGISTRY_PORT) serving devstack/notebook-image's storage; every
#   daemon starts empty, so every first create on a host is a real pull.
# - Networking: one Linux bridge ($DOCKER_BRIDGE, the Neutron subnet's gateway
#   address) in the cloud's network namespace, which every daemon's Docker
#   network of the stub's network uses (devstack/docker_parts/docker_parts/
#   network.py; other Neutron networks get zunbr-* bridges that the daemons
#   make); the Neutron stub hands out the ports (--subnet).  No iptables rule,
#   no sysctl.
# - Volumes: cinder-volume's backend keeps each volume as a file
#   (docker_parts/file_volume.py); Zun's own Cinder path mounts it, through
#   sudo and zun-rootwrap as DevStack sets them up (configured here, under
#   $ETC/zun: nothing is written outside the cloud's directory).
# Used by: install_all, write_configs, cmd_up, stop_all in devstack/local-cloud.

DOCKER_HOSTS=(compute-1 compute-2)
DOCKER_ZONES=(zone-1 zone-2)
DOCKER_BRIDGE=${LOCAL_CLOUD_BRIDGE:-zunbr0}
DOCKER_SUBNET=${LOCAL_CLOUD_SUBNET:-172.31.250.0/23}
DOCKER_GATEWAY=${DOCKER_SUBNET%.*/*}.1
REGISTRY_PORT=${LOCAL_REGISTRY_PORT:-5050}
DOCKER_PARTS_SRC="$DEVSTACK/docker_parts"
NOTEBOOK_IMAGE="$DEVSTACK/notebook-image"
DOCKER_HOST_SH="$DEVSTACK/docker-host"

docker_debs() { # the Debian packages the Docker path needs that are missing
    [[ -x /usr/sbin/dockerd ]] || echo docker.io
    [[ -x /usr/bin/docker-registry ]] || echo docker-registry
    command -v debootstrap >/dev/null || echo debootstrap
    # zun-compute's base driver lists PCI devices with lspci at start-up
    command -v lspci >/dev/null || echo pciutils
    # os-brick and Zun's privileged calls go through sudo + zun-rootwrap
    [[ -x /usr/bin/sudo ]] || echo sudo
}

# (also the image of Magnum's real nodes)
notebook_image() {
    log "the notebook image (devstack/notebook-image: built on first use, then cached; log $VENVS/notebook-image.log)"
    # (with the cloud's uv, whose cache the venvs above just filled)
    NOTEBOOK_IMAGE_UV=${NOTEBOOK_IMAGE_UV:-$UV} "$NOTEBOOK_IMAGE" build >"$VENVS/notebook-image.log" 2>&1 ||
        { tail -n 30 "$VENVS/notebook-image.log" >&2; die "devstack/notebook-image build failed"; }
}

docker_install() {
    notebook_image
    install_editable "$VENVS/zun" "$DOCKER_PARTS_SRC"
    install_editable "$VENVS/cinder" "$DOCKER_PARTS_SRC"
}

# ini_set FILE SECTION KEY VALUE...: set keys in an ini file (python configparser).
ini_set() {
    "$PY" - "$@" <<'EOF'
import configparser, sys
path, rest = sys.argv[1], sys.argv[2:]
cp = configparser.RawConfigParser(strict=False, interpolation=None)
cp.optionxform = str
cp.read(path)
for section, key, value in zip(rest[0::3], rest[1::3], rest[2::3]):
    if section != "DEFAULT" and not cp.has_section(section):
        cp.add_section(section)
    cp.set(section, key, value)
with open(path, "w") as f:
    cp.write(f)
EOF
}

docker_configs() {
    local zun="$ETC/zun" i host helper
    # zun-compute gives oslo.privsep its root helper before it reads its
    # config (zun/cmd/compute.py), so the default /etc/zun/rootwrap.conf
    # would be used: oslo.privsep's own helper_command names ours.
    helper="sudo zun-rootwrap $zun/rootwrap.conf privsep-helper"
    mkdir -p "$zun/bin" "$zun/rootwrap.d" "$STATE/cinder-volumes"
    # zun-api and the scheduler: Zun's docker driver reports the hosts' runtimes.
    ini_set "$zun/zun.conf" DEFAULT container_driver docker \
        DEFAULT capsule_driver docker \
        DEFAULT image_driver_list docker DEFAULT default_image_driver docker \
        DEFAULT rootwrap_config "$zun/rootwrap.conf" \
        network driver local-bridge local_bridge bridge "$DOCKER_BRIDGE" \
        local_bridge network "$NETWORK_ID" \
        docker docker_remote_api_version 1.40
    # sudo as DevStack's sudoers entry lets zun-compute use it: DevStack puts
    # zun-rootwrap and privsep-helper on the system PATH, here they stay in
    # the zun venv, so the command is resolved in zun-compute's PATH first.
    cat >"$zun/bin/sudo" <<'EOF'
#!/bin/sh
cmd=$(command -v "$1") || { echo "sudo: $1: command not found" >&2; exit 1; }
shift
exec /usr/bin/sudo "$cmd" "$@"
EOF
    chmod 755 "$zun/bin/sudo"
    cat >"$zun/rootwrap.conf" <<EOF
[DEFAULT]
filters_path = $zun/rootwrap.d
exec_dirs = $VENVS/zun/bin,/sbin,/usr/sbin,/bin,/usr/bin
use_syslog = False
EOF
    # Zun's filter, with this cloud's config files instead of /etc/zun's, and
    # the same for Zun's own privsep context (mkfs, mount, umount).
    cat >"$zun/rootwrap.d/zun.filters" <<EOF
[Filters]
privsep-rootwrap: RegExpFilter, privsep-helper, root, privsep-helper, --config-file, $zun/zun-compute-[0-9]+\.conf, --privsep_context, os_brick.privileged.default, --privsep_sock_path, /tmp/.*
privsep-rootwrap-zun: RegExpFilter, privsep-helper, root, privsep-helper, --config-file, $zun/zun-compute-[0-9]+\.conf, --privsep_context, zun.common.privileged.default, --privsep_sock_path, /tmp/.*
EOF
    for i in "${!DOCKER_HOSTS[@]}"; do
        host=${DOCKER_HOSTS[$i]}
        mkdir -p "$DATA/zun-$host/locks" "$STATE/zun-volumes-$host"
        cp "$zun/zun.conf" "$zun/zun-$host.conf"
        ini_set "$zun/zun-$host.conf" DEFAULT host "$host" \
            DEFAULT default_availability_zone "${DOCKER_ZONES[$i]}" \
            DEFAULT state_path "$DATA/zun-$host" \
            oslo_concurrency lock_path "$DATA/zun-$host/locks" \
            docker api_url "unix://$DIR/docker/$host/docker.sock" \
            volume volume_dir "$STATE/zun-volumes-$host" \
            privsep helper_command "$helper --config-file $zun/zun-$host.conf" \
            privsep_osbrick helper_command "$helper --config-file $zun/zun-$host.conf"
    done
    ini_set "$ETC/cinder/cinder.conf" DEFAULT enabled_backends file \
        file volume_driver docker_parts.file_volume.FileVolumeDriver \
        file volume_backend_name file file file_volume_dir "$STATE/cinder-volumes" \
        file enable_unsupported_driver True \
        file target_helper fake
    # What the tests and the demo's hub need to know of this path.
    cat >"$DIR/docker.json" <<EOF
{"image": "127.0.0.1:$REGISTRY_PORT/$("$NOTEBOOK_IMAGE" name)",
 "registry": "127.0.0.1:$REGISTRY_PORT", "hub_ip": "$DOCKER_GATEWAY",
 "hosts": {"${DOCKER_HOSTS[0]}": "${DOCKER_ZONES[0]}", "${DOCKER_HOSTS[1]}": "${DOCKER_ZONES[1]}"},
 "docker_dir": "$DIR/docker"}
EOF
}

# The bridge every host's containers are on; its address is the subnet's
# gateway, where the hub listens for its servers.
docker_bridge_up() {
    ip link show "$DOCKER_BRIDGE" >/dev/null 2>&1 && ip link del "$DOCKER_BRIDGE"
    ip link add "$DOCKER_BRIDGE" type bridge
    ip addr add "$DOCKER_GATEWAY/${DOCKER_SUBNET#*/}" dev "$DOCKER_BRIDGE"
    ip link set "$DOCKER_BRIDGE" up
    echo "$DOCKER_BRIDGE" >"$RUN/bridge"
}

docker_start_hosts() {
    local host
    docker_bridge_up
    start registry "$DOCKER_HOST_SH" registry "$("$NOTEBOOK_IMAGE" storage)" "127.0.0.1:$REGISTRY_PORT"
    for host in "${DOCKER_HOSTS[@]}"; do
        start "dockerd@$host" "$DOCKER_HOST_SH" dockerd "$DIR/docker/$host" "$host"
    done
}

docker_wait_hosts() {
    local host
    "$DOCKER_HOST_SH" registry-wait "127.0.0.1:$REGISTRY_PORT" "$TIMEOUT" ||
        fail_service registry "not answering"
    for host in "${DOCKER_HOSTS[@]}"; do
        "$DOCKER_HOST_SH" wait "$DIR/docker/$host" "$TIMEOUT" ||
            fail_service "dockerd@$host" "not answering"
    done
}

docker_start_computes() {
    local host
    for host in "${DOCKER_HOSTS[@]}"; do
        PATH="$ETC/zun/bin:$VENVS/zun/bin:$PATH" start "zun-compute@$host" \
            "$VENVS/zun/bin/zun-compute" --config-file "$ETC/zun/zun-$host.conf"
    done
}

# docker_compute stop|start HOST: one host's zun-compute only (its Docker daemon
# and containers stay), as when the service dies on a real compute host; the
# lost-host e2e test uses it.
docker_compute() {
    local action=$1 host=$2 name="zun-compute@$2" i
    [[ -f "$ETC/zun/zun-$host.conf" ]] || die "no Docker host $host in this cloud"
    case $action in
    stop)
        alive "$name" || return 0
        kill -TERM -- "-$(cat "$RUN/$name.pid")"
        for i in $(seq 100); do
            alive "$name" || break
            sleep 0.1
        done
        alive "$name" && kill -KILL -- "-$(cat "$RUN/$name.pid")"
        rm -f "$RUN/$name.pid"
        ;;
    start)
        alive "$name" && return 0
        PATH="$ETC/zun/bin:$VENVS/zun/bin:$PATH" start "$name" \
            "$VENVS/zun/bin/zun-compute" --config-file "$ETC/zun/zun-$host.conf"
        ;;
    *) die "compute stop|start HOST" ;;
    esac
}

docker_services() { # docker_services SERVICE...: the list with this path's
    local s host # process groups in place of zun-compute (one a line)
    for s in "$@"; do [[ $s == zun-compute ]] || echo "$s"; done
    echo registry
    for host in "${DOCKER_HOSTS[@]}"; do printf '%s\n' "dockerd@$host" "zun-compute@$host"; done
}

# Called by stop_all before the process groups are stopped: every daemon
# removes its containers and stops (what it leaves is removed too), then the
# bridges go (the daemons leave theirs, zunbr-*, behind when they stop).
# Works from what is on disk, whatever LOCAL_CLOUD_DRIVER is now.
docker_stop_hosts() {
    local root link
    for root in "$DIR"/docker/*/; do
        [[ -d "$root" ]] || continue
        "$DOCKER_HOST_SH" stop "${root%/}" || true
    done
    if [[ -s "$RUN/bridge" ]]; then
        ip link del "$(cat "$RUN/bridge")" 2>/dev/null || true
        rm -f "$RUN/bridge"
    fi
    for link in $(ip -o link show type bridge | awk -F': ' '$2 ~ /^zunbr-/ { print $2 }'); do
        ip link del "$link" 2>/dev/null || true
    done
}
