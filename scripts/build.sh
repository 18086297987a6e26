#!/usr/bin/env bash
# Configures (once) and builds one build tree. Usage: scripts/build.sh [plain|asan]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
flavour=${1:-plain}
case "$flavour" in
  plain) dir="$here/build"; extra=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan)  dir="$here/build-asan"; extra=(-DCMAKE_BUILD_TYPE=Debug -DCAPNET_SANITIZE=ON) ;;
  *) echo "build: unknown flavour '$flavour' (plain|asan)" >&2; exit 2 ;;
esac
if [[ ! -f "$dir/build.ninja" ]]; then
  cmake -S "$here" -B "$dir" -G Ninja -DCAPNET_WERROR=ON "${extra[@]}" >/dev/null
fi
cmake --build "$dir"
