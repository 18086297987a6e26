#!/usr/bin/env bash
# The main job: build capnet and start capd on the default config (config/network.json).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$here/scripts/deps.sh"
"$here/scripts/build.sh" plain
exec "$here/build/capd/capd" --config "$here/config/network.json" "$@"
