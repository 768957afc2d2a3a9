# shellcheck shell=bash
# Zun's plugin as the plugin tests need it (openstack/zun devstack/plugin.sh):
# Zun answers from its `stack extra` on; its `unstack` stops zun-api,
# zun-compute (and, before this plugin's unstack, Docker with it).
if [[ "$1" == "stack" && "$2" == "extra" ]]; then
    rm -f "$STUB_ROOT/zun-stopped"
elif [[ "$1" == "unstack" ]]; then
    touch "$STUB_ROOT/zun-stopped"
fi
