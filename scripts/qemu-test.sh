#!/usr/bin/env bash
# The marker contract of TASK-0194: boots the guest under QEMU once per profile and decides from
# the console log (and the host fixtures' logs) whether the profile passed.
#
#   RUN_UNTIL_MARKER=1 RUN_TIMEOUT=200s ./scripts/qemu-test.sh     # every profile
#   PROFILE=devnet-off ./scripts/qemu-test.sh                      # one profile
#
# Each profile's required and forbidden markers live in scripts/markers.conf. Exit 0 only when every
# enabled profile saw all its required markers and none of its forbidden ones. Logs: build/qemu/.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CAPNET_BUILD_DIR:-$here/build}
conf="$here/scripts/markers.conf"
outdir="$build/qemu"
run_until_marker=${RUN_UNTIL_MARKER:-0}
timeout_s=${RUN_TIMEOUT:-200s}
timeout_s=${timeout_s%s}
[[ "$timeout_s" =~ ^[0-9]+$ ]] || { echo "qemu-test: RUN_TIMEOUT must be seconds, e.g. 200s" >&2; exit 2; }
rtc_base=2026-06-01T00:00:00

"$here/scripts/build.sh" plain >/dev/null
"$here/scripts/build-guest.sh"
mkdir -p "$outdir"

# --- read the contract --------------------------------------------------------------------------
declare -A conf_val
declare -a profiles=()
section=
while IFS= read -r line || [[ -n "$line" ]]; do
  line=${line%%$'\r'}
  [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
  if [[ "$line" =~ ^\[([a-z0-9-]+)\]$ ]]; then
    section=${BASH_REMATCH[1]}
    [[ "$section" == global ]] || profiles+=("$section")
    continue
  fi
  if [[ "$line" =~ ^([a-z]+)[[:space:]]*=[[:space:]]*(.*)$ ]]; then
    key="$section.${BASH_REMATCH[1]}"
    conf_val[$key]+="${BASH_REMATCH[2]}"$'\n'
  else
    echo "qemu-test: $conf: cannot parse: $line" >&2
    exit 2
  fi
done < "$conf"

values() { printf '%s' "${conf_val[$1]:-}" | sed '/^$/d'; }
value() { values "$1" | head -n 1; }

pids=()
stop_hook=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n "$stop_hook" ]]; then bash -c "$stop_hook" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# drop_found PATTERNS INPUT...: removes from the file PATTERNS (one marker a line) every marker
# that occurs in the input (as text, not a pattern).
drop_found() {
  local pats=$1 found
  shift
  [[ -s "$pats" ]] || return 0
  found=$(awk 'NR == FNR { if ($0 != "") p[$0] = 1; next } { for (m in p) if (index($0, m)) { print m; delete p[m] } }' "$pats" "$@")
  [[ -n "$found" ]] || return 0
  grep -vxF -f <(printf '%s\n' "$found") "$pats" > "$pats.tmp" || true
  mv "$pats.tmp" "$pats"
}

# --- one profile ----------------------------------------------------------------------------------
run_profile() {
  local p=$1
  local log="$outdir/uart-$p.log" fixlog="$outdir/fixture-$p.log" nonce
  nonce=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
  : > "$log"
  : > "$log.times"
  : > "$fixlog"

  local state="$outdir/state-$p.img" stage="$outdir/state-$p"
  rm -rf "$stage" && mkdir -p "$stage/config" "$stage/trust/installed"
  case "$(value "$p.state")" in
    devnet-on) cp "$here/config/devnet-on.json" "$stage/config/network.json" ;;
    hostile) cp "$here/config/hostile.json" "$stage/config/network.json" ;;
    load) cp "$here/config/load.json" "$stage/config/network.json" ;;
    empty|"") ;;
    *) echo "qemu-test: $p: unknown state '$(value "$p.state")'" >&2; return 2 ;;
  esac
  # A profile may prepare its own host side (servers, the oracle's verdicts, files on the state disk
  # and more guestfwd fixtures) with a command run before the boot, and undo it with `stop`.
  local work="$outdir/work-$p"
  rm -rf "$work" && mkdir -p "$work"
  local prep stop
  prep=$(value "$p.prepare")
  stop=$(value "$p.stop")
  stop_hook=""
  [[ -n "$stop" ]] && stop_hook="WORK='$work' ${stop//\$HERE/$here}"
  if [[ -n "$prep" ]]; then
    prep=${prep//\$HERE/$here}
    if ! WORK=$work STAGE=$stage NONCE=$nonce BUILD=$build bash -c "$prep" > "$work/prepare.log" 2>&1; then
      summary+=("$(printf '%-14s FAIL        prepare failed: %s' "$p" "$(tail -n 3 "$work/prepare.log" | tr '\n' ' ')")")
      summary+=("    log: $work/prepare.log")
      [[ -n "$stop_hook" ]] && bash -c "$stop_hook" >/dev/null 2>&1
      return 1
    fi
  fi
  rm -f "$state"
  mke2fs -q -F -t ext4 -d "$stage" "$state" 32M

  local -a net=()
  local nic
  nic=$(value "$p.nic")
  case "$nic" in
    vfio|vfio+kernel)
      local fwd="" spec ipport prog
      while IFS= read -r spec; do
        [[ -n "$spec" ]] || continue
        ipport=${spec%% *}
        prog=${spec#* }
        prog=${prog//\$NONCE/$nonce}
        prog=${prog//\$LOG/$fixlog}
        prog=${prog//\$BUILD/$build}
        # Each fixture is bounded: guestfwd programs outlive QEMU otherwise.
        fwd+=",guestfwd=tcp:$ipport-cmd:timeout 60 $prog"
      done < <(values "$p.fixture"; [[ -f "$work/fixtures" ]] && cat "$work/fixtures")
      net=(-netdev "user,id=n0,restrict=on,ipv6=off,net=10.0.2.0/24$fwd"
           -device virtio-net-pci,netdev=n0,disable-legacy=on,iommu_platform=on,romfile=)
      if [[ "$nic" == vfio+kernel ]]; then
        # A second NIC for the guest kernel's own virtio_net (the benchmark's comparison path):
        # its own user network with the same fixtures.
        net+=(-netdev "user,id=n1,restrict=on,ipv6=off,net=10.0.2.0/24$fwd"
              -device virtio-net-pci,netdev=n1,disable-legacy=on,iommu_platform=on,romfile=)
      fi
      ;;
    none) net=(-nic none) ;;
    *) echo "qemu-test: $p: unknown nic '$(value "$p.nic")'" >&2; return 2 ;;
  esac

  local start=$SECONDS first_marker=""
  local -a boots=("$p")
  local then
  then=$(value "$p.then")
  [[ -n "$then" ]] && boots+=("$then")
  local boot
  for boot in "${boots[@]}"; do
  [[ "$boot" != "$p" ]] && echo "qemu-test: --- reboot on the same state disk as profile $boot ---" >> "$log"
  qemu-system-x86_64 -accel tcg -M q35,kernel-irqchip=split -m 512 -smp 1 -cpu max \
    -device intel-iommu,intremap=on \
    -kernel "$build/guest/vmlinux" -initrd "$build/guest/initrd.cpio" \
    -append "console=ttyS0 quiet intel_iommu=on no_timer_check panic=-1 capnet.profile=$boot" \
    -rtc "base=$rtc_base,clock=vm" \
    -drive "file=$state,if=virtio,format=raw" \
    "${net[@]}" \
    -display none -serial "file:$log.boot" -monitor none -no-reboot &
  local qpid=$!
  pids+=("$qpid")
  local qemu_started=${EPOCHREALTIME/./}   # microseconds

  local -a required forbidden allowed
  mapfile -t required < <(values "$p.require")
  mapfile -t allowed < <(values "$p.allow")
  # A profile may allow a globally forbidden line (the restart profile's `init: restart`).
  mapfile -t forbidden < <(values "global.forbid" | grep -vxF -f <(printf '%s\n' "${allowed[@]}" | sed '/^$/d'); values "$p.forbid")
  # The last boot may stop early; earlier boots run until their guest powers off.
  local last=0 drain_until=""
  [[ "$boot" == "${boots[-1]}" ]] && last=1
  # The poll looks only at the lines that arrived since the last one, with a handful of processes
  # (a grep per marker per poll, three guests at a time, cost the host about half a core).
  local seen_lines=0 lines now_ds waiting="$log.waiting"
  : > "$waiting"
  if [[ "$run_until_marker" == 1 && "$last" == 1 ]]; then
    printf '%s\n' "${required[@]}" | sed '/^$/d' > "$waiting"
    [[ -s "$log" ]] && drop_found "$waiting" "$log"   # an earlier boot's lines count too
  fi
  while kill -0 "$qpid" 2>/dev/null; do
    lines=0
    [[ -f "$log.boot" ]] && lines=$(wc -l < "$log.boot")   # QEMU creates it once it has started
    if (( lines > seen_lines )); then
      sed -n "$((seen_lines + 1)),${lines}p" "$log.boot" > "$log.new"
      seen_lines=$lines
      # Each console line with the time it was first seen after QEMU started (to the poll's
      # 0.2 s): $log.times shows where a profile's seconds go.
      now_ds=$(( (${EPOCHREALTIME/./} - qemu_started) / 100000 ))
      sed "s/^/[$boot +$((now_ds / 10)).$((now_ds % 10))s] /" "$log.new" >> "$log.times"
      # The first marker's time after QEMU started (issue 13: at most 5 s).
      if [[ -z "$first_marker" ]] && grep -q "^init: boot profile=" "$log.new"; then
        first_marker="$((now_ds / 10)).$((now_ds % 10))s"
      fi
      # Every required marker seen: keep reading for a short drain (1 s), so that a forbidden line
      # printed right after the last required one still fails the run.
      if [[ -s "$waiting" ]]; then
        drop_found "$waiting" "$log.new"
        [[ -s "$waiting" ]] || drain_until=$((${EPOCHREALTIME/./} / 100000 + 10))   # deciseconds
      fi
    fi
    if (( SECONDS - start >= timeout_s )); then
      echo "qemu-test: $p: RUN_TIMEOUT (${timeout_s}s) reached" >> "$log"
      break
    fi
    [[ -n "$drain_until" ]] && (( ${EPOCHREALTIME/./} / 100000 >= drain_until )) && break
    sleep 0.2
  done
  kill "$qpid" 2>/dev/null || true
  wait "$qpid" 2>/dev/null || true
  # The lines that arrived after the last poll (the last markers, the power-off).
  lines=0
  [[ -f "$log.boot" ]] && lines=$(wc -l < "$log.boot")
  if (( lines > seen_lines )); then
    now_ds=$(( (${EPOCHREALTIME/./} - qemu_started) / 100000 ))
    sed -n "$((seen_lines + 1)),${lines}p" "$log.boot" | sed "s/^/[$boot +$((now_ds / 10)).$((now_ds % 10))s] /" >> "$log.times"
  fi
  cat "$log.boot" >> "$log"
  rm -f "$log.boot" "$log.new" "$waiting"
  done

  local missing=() seen=() m
  for m in "${required[@]}"; do grep -qF -- "$m" "$log" || missing+=("$m"); done
  for m in "${forbidden[@]}"; do
    [[ -n "$m" ]] || continue
    grep -qF -- "$m" "$log" && seen+=("$m")
  done
  local check failed_checks=()
  while IFS= read -r check; do
    [[ -n "$check" ]] || continue
    NONCE=$nonce LOG=$fixlog UART=$log WORK=$work HERE=$here bash -c "$check" || failed_checks+=("$check")
  done < <(values "$p.check")
  if [[ -n "$stop_hook" ]]; then bash -c "$stop_hook" >/dev/null 2>&1 || true; fi
  stop_hook=""

  local secs=$((SECONDS - start))
  if ((${#missing[@]} == 0 && ${#seen[@]} == 0 && ${#failed_checks[@]} == 0)); then
    summary+=("$(printf '%-14s PASS %4ss  first marker %s' "$p" "$secs" "${first_marker:-none}")")
    return 0
  fi
  summary+=("$(printf '%-14s FAIL %4ss' "$p" "$secs")")
  for m in "${missing[@]}"; do summary+=("    missing: $m"); done
  for m in "${seen[@]}"; do summary+=("    forbidden: $(grep -F -- "$m" "$log" | head -n 1)"); done
  for m in "${failed_checks[@]}"; do summary+=("    host check failed: $m"); done
  summary+=("    log: $log")
  return 1
}

selected=("${profiles[@]}")
if [[ -n "${PROFILE:-}" ]]; then
  [[ -n "${conf_val[$PROFILE.enabled]:-}" ]] || { echo "qemu-test: no profile '$PROFILE' in $conf" >&2; exit 2; }
  selected=("$PROFILE")
fi

# Profiles share nothing (own state disk, own user network and fixtures, own logs). A TCG guest
# uses at most one host core, but not all the time: a guest idles while its daemons restart with
# backoff, while host fixtures answer, and between boots. So they run QEMU_JOBS at a time, by
# default one more than the cores (3 on a 2-core machine: 26-30 s against 31-32 s with 2; 4 there
# pushed first markers past 5 s). Each job writes its summary to a file; the summaries are printed
# in the contract's order.
jobs_max=${QEMU_JOBS:-$(( $(nproc) + 1 ))}
[[ "$jobs_max" =~ ^[1-9][0-9]*$ ]] || { echo "qemu-test: QEMU_JOBS must be a positive number" >&2; exit 2; }
run_job() {
  local p=$1 r=0
  trap cleanup EXIT
  summary=()
  run_profile "$p" || r=1
  printf '%s\n' "${summary[@]}" > "$outdir/summary-$p"
  return "$r"
}

# Longest first (each profile's time in the last run, from its summary; on a fresh checkout, as in
# CI, its `cost` in the contract; unknown ones first), so that no long profile starts last and
# leaves a core idle at the end. (`|| true`: sed fails on a missing file, and errexit holds inside
# this subshell.)
order=()
while IFS= read -r line; do order+=("${line#* }"); done < <(
  for p in "${selected[@]}"; do
    secs=$(sed -n '1s/^[^ ]* *PASS *\([0-9]*\)s.*/\1/p; 1s/^[^ ]* *FAIL *\([0-9]*\)s.*/\1/p' "$outdir/summary-$p" 2>/dev/null || true)
    [[ -n "$secs" ]] || secs=$(value "$p.cost")
    [[ "$secs" =~ ^[0-9]+$ ]] || secs=999
    printf '%s %s\n' "${secs:-999}" "$p"
  done | sort -s -k1,1nr)
# Every selected profile runs (or is skipped) and writes a fresh summary: none of the last run's
# may stand in for this one's.
(( ${#order[@]} == ${#selected[@]} )) || { echo "qemu-test: could not order the profiles" >&2; exit 2; }
for p in "${selected[@]}"; do rm -f "$outdir/summary-$p"; done

wall_start=$SECONDS
declare -a job_pids=()
rc=0
for p in "${order[@]}"; do
  enabled=$(value "$p.enabled")
  rm -f "$outdir/summary-$p"
  if [[ "$enabled" != yes && "${FORCE_PROFILE:-0}" != 1 ]]; then
    printf '%-14s SKIP        reason=%s\n' "$p" "${enabled#no:}" > "$outdir/summary-$p"
    continue
  fi
  while (( $(jobs -rp | wc -l) >= jobs_max )); do sleep 0.2; done
  echo "qemu-test: running profile $p"
  run_job "$p" &
  job_pids+=($!)
done
for i in "${!job_pids[@]}"; do
  wait "${job_pids[$i]}" || rc=1
done

echo "== QEMU marker contract"
for p in "${selected[@]}"; do
  if [[ -s "$outdir/summary-$p" ]]; then cat "$outdir/summary-$p"; else printf '%-14s FAIL        no summary (the job died)\n' "$p"; rc=1; fi
done
echo "qemu-test: ${#job_pids[@]} profiles in $((SECONDS - wall_start)) s of wall time, $jobs_max at a time"
exit "$rc"
