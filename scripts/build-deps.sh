# Sourced by demo.sh and test.sh: what `npm run build` needs besides npm packages. The platform addon
# (src/platform) is compiled by node-gyp: g++, make, python3, and Node's own headers (node-gyp would
# otherwise download them, and no such host is reachable in CI).
install_apt_packages() {
  local missing=""
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
}
use_node_headers() {
  local node_prefix
  node_prefix=$(dirname "$(dirname "$(command -v node)")")
  if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node_api.h" ]; then export npm_config_nodedir="$node_prefix"; fi
}
BUILD_APT_PACKAGES="g++ make python3"
