#!/usr/bin/env bash
# Every test: host tests (doctest via CTest), the flood test's figures, the same tests under
# ASan+UBSan, the fuzz targets' regression slice (scripts/fuzz.sh --regress), then the QEMU marker
# contract (scripts/qemu-test.sh, every profile). Installs what the machine lacks first.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

"$here/scripts/deps.sh"

echo "== host tests (-Wall -Wextra -Werror)"
"$here/scripts/build.sh" plain
ctest --test-dir "$here/build" --output-on-failure -j2

echo "== one uid floods every daemon socket while another is served (RSS growth per daemon)"
"$here/build/tests/flood-test" 2>&1 | sed -n 's/^.*MESSAGE: /  /p'

echo "== host tests under ASan+UBSan"
"$here/scripts/build.sh" asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$here/build-asan" --output-on-failure -j2

echo "== fuzz targets: committed corpora replayed, then a short slice each (scripts/fuzz.sh)"
"$here/scripts/fuzz.sh" --regress

if [[ -x "$here/scripts/qemu-test.sh" ]]; then
  echo "== QEMU marker contract"
  RUN_UNTIL_MARKER=1 RUN_TIMEOUT=200s "$here/scripts/qemu-test.sh"
fi
