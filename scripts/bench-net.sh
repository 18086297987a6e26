#!/usr/bin/env bash
# The network benchmark: one guest boot, netd's path (lwIP over the VFIO-owned NIC) and the guest
# kernel's TCP path (a second virtio-net NIC on virtio_net) against the same host echo fixture.
# Prints connect latency p50/p99 and bulk echo throughput side by side with their ratios.
# Not part of CI's pass/fail; docs/performance.md records the figures.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FORCE_PROFILE=1 PROFILE=bench RUN_UNTIL_MARKER=1 RUN_TIMEOUT="${RUN_TIMEOUT:-300s}" "$here/scripts/qemu-test.sh" >/dev/null || {
  echo "bench-net: the benchmark boot failed; see build/qemu/uart-bench.log" >&2
  grep -E 'SELFTEST|bench:' "$here/build/qemu/uart-bench.log" >&2 || true
  exit 1
}
grep -E '^bench: ' "$here/build/qemu/uart-bench.log" | sed 's/^bench: //'
