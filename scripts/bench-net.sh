#!/usr/bin/env bash
# The network benchmark: one guest boot, netd's path (lwIP over the VFIO-owned NIC, reached through
# capd's grant and netd's RPC) and the guest kernel's TCP path (a second virtio-net NIC on
# virtio_net) against the same host fixtures. Prints every figure with netd's value, the kernel's,
# their ratio, the target and whether it is met (docs/performance.md records the runs).
#
#   scripts/bench-net.sh          the table
#   scripts/bench-net.sh --json   the same figures as one JSON object, for scripts
#
# Not part of CI's pass/fail: a benchmark, not a timed test.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
format=table
case "${1:-}" in
  --json) format=json ;;
  "") ;;
  -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: scripts/bench-net.sh [--json]" >&2; exit 2 ;;
esac
FORCE_PROFILE=1 PROFILE=bench RUN_UNTIL_MARKER=1 RUN_TIMEOUT="${RUN_TIMEOUT:-300s}" "$here/scripts/qemu-test.sh" >/dev/null || {
  echo "bench-net: the benchmark boot failed; see build/qemu/uart-bench.log" >&2
  grep -E 'SELFTEST|bench:' "$here/build/qemu/uart-bench.log" >&2 || true
  exit 1
}
if [[ "$format" == table ]]; then
  # netd's link counters per MiB during the one-way figures (the profile in docs/performance.md).
  # And where the guest's one CPU went in each phase (netd, fetchd, the benchmark itself,
  # interrupts, idle), as shares of the phase's clock ticks; then netd's own sampling profile over
  # the netd phases (netd --cpu-profile), by function.
  trap '{ grep -E "^bench: counters " "$here/build/qemu/uart-bench.log" | sed "s/^bench: counters /netd link counters: /"; } || true
        { grep -E "^bench: cpu " "$here/build/qemu/uart-bench.log" | sed "s/^bench: cpu /guest cpu: /"; } || true
        DEBUG_DIR="$here/.cache/debug/usr/lib/debug" "$here/scripts/symbolize-profile.py" "$here/build/qemu/uart-bench.log" "$here/build" netd 20 || true' EXIT
  # glibc's symbols for the profile (its string functions are internal): libc6-dbg, fetched once
  # (apt-get download; nothing is installed). Without it the profile names exported neighbours.
  if [[ ! -d "$here/.cache/debug/usr/lib/debug" ]]; then
    mkdir -p "$here/.cache/debug"
    (cd "$here/.cache/debug" && apt-get download libc6-dbg >/dev/null 2>&1 && dpkg -x libc6-dbg_*.deb . && rm -f libc6-dbg_*.deb) ||
      echo "bench-net: libc6-dbg unavailable: the profile names glibc's exported symbols only" >&2
  fi
fi
grep -E '^bench: figure=' "$here/build/qemu/uart-bench.log" | python3 -c '
import json, re, shlex, sys
fmt = sys.argv[1]
rows = []
for line in sys.stdin:
    kv = dict(tok.split("=", 1) for tok in shlex.split(line[len("bench: "):]))
    netd, kernel = float(kv["netd"]), float(kv["kernel"])
    what, bound = re.match(r"(ratio|netd)(<=|>=)", kv["target"]).group(1), float(re.split(r"<=|>=", kv["target"])[1])
    ratio = netd / kernel if kernel > 0 else None
    value = ratio if what == "ratio" else netd
    met = value is not None and (value <= bound if "<=" in kv["target"] else value >= bound)
    rows.append({"figure": kv["figure"], "label": kv["label"], "unit": kv["unit"], "netd": netd,
                 "kernel": kernel if kernel >= 0 else None, "ratio": ratio, "target": kv["target"], "met": met})
if fmt == "json":
    print(json.dumps({"figures": rows}, indent=2))
    sys.exit(0)
print("%-40s %14s %14s %12s %12s %4s" % ("figure (one boot, QEMU TCG)", "netd", "kernel", "netd/kernel", "target", "met"))
for r in rows:
    k = "%.2f %s" % (r["kernel"], r["unit"]) if r["kernel"] is not None else "-"
    ratio = "%.2fx" % r["ratio"] if r["ratio"] is not None else "-"
    target = r["target"].replace("ratio", "").replace("netd", "") + ("x" if r["target"].startswith("ratio") else " " + r["unit"])
    print("%-40s %14s %14s %12s %12s %4s" % (r["label"], "%.2f %s" % (r["netd"], r["unit"]), k, ratio, target, "yes" if r["met"] else "no"))
' "$format"
