#!/usr/bin/env bash
# The main job: build capnet and start capd on the default config (config/network.json), serving
# the broker on build/run/capd.sock. netd's control socket is build/run/netd-control.sock; until a
# netd listens there capd reports netd-unreachable and refuses every mint (fail closed).
# Stop it with Ctrl-C; send SIGHUP to reload the config.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$here/scripts/deps.sh"
"$here/scripts/build.sh" plain
run="$here/build/run"
mkdir -p "$run"
"$here/build/capd/capd" --check "$here/config/network.json"
exec "$here/build/capd/capd" --config "$here/config/network.json" \
  --socket "$run/capd.sock" --netd-control "$run/netd-control.sock" "$@"
