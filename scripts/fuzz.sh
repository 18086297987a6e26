#!/usr/bin/env bash
# The libFuzzer targets (fuzz/): every parser of untrusted bytes, built with clang-14 under
# ASan+UBSan into build-fuzz/.
#
#   scripts/fuzz.sh --list             the target names, one a line
#   scripts/fuzz.sh TARGET SECONDS     fuzz one target for SECONDS
#   scripts/fuzz.sh [SECONDS]          fuzz every target (default 60 s each)
#   scripts/fuzz.sh --regress          replay each committed corpus, then fuzz each target 3 s
#                                      (the README's test command runs this)
#
# New inputs go to a scratch corpus (build-fuzz/corpus/TARGET), never into the committed one;
# a crash leaves its reproducer in build-fuzz/artifacts/ and fails the run. Executions per target
# are printed (docs/reliability.md records the long campaigns).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$here/build-fuzz"
targets=(config url cert pem broker trust-manager virtq http fetchd-rpc netd-rpc tls frames)

if [[ "${1:-}" == "--list" ]]; then
  printf '%s\n' "${targets[@]}"
  exit 0
fi

"$here/scripts/deps.sh"
"$here/scripts/build.sh" plain >/dev/null   # the test PKI the cert target checks against
if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCAPNET_FUZZ=ON -DCAPNET_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target fuzz-all tls-certs >/dev/null
mkdir -p "$build/artifacts"

run() {   # run TARGET SECONDS
  local t=$1 secs=$2 scratch="$build/corpus/$1" out dict=()
  [[ -x "$build/fuzz/fuzz-$t" ]] || { echo "fuzz: unknown target '$t' (see --list)" >&2; exit 2; }
  [[ -f "$here/fuzz/$t.dict" ]] && dict=(-dict="$here/fuzz/$t.dict")   # fuzz/TARGET.dict, when there is one
  mkdir -p "$scratch"
  out=$(cd "$build" && ASAN_OPTIONS=detect_leaks=0 "$build/fuzz/fuzz-$t" -max_total_time="$secs" -rss_limit_mb=2048 \
          "${dict[@]}" -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" "$scratch" "$here/fuzz/corpus/$t" 2>&1) || {
    echo "$out" | tail -40
    echo "fuzz: $t FAILED (reproducer in $build/artifacts/)"
    return 1
  }
  echo "fuzz: $t ok executions=$(echo "$out" | sed -n 's/^stat::number_of_executed_units: //p') seconds=$secs" \
       "$(echo "$out" | grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' | tail -1 | grep -o 'cov: [0-9]*')"
}

replay() {   # replay TARGET: each committed input once
  local t=$1
  (cd "$build" && ASAN_OPTIONS=detect_leaks=0 "$build/fuzz/fuzz-$t" -artifact_prefix="$build/artifacts/$t-" \
     "$here"/fuzz/corpus/"$t"/* >/dev/null 2>&1) || { echo "fuzz: $t corpus replay FAILED"; return 1; }
  echo "fuzz: $t corpus replayed ($(ls "$here/fuzz/corpus/$t" | wc -l) inputs)"
}

case "${1:-}" in
  --regress)
    for t in "${targets[@]}"; do replay "$t"; run "$t" 3; done ;;
  "" | [0-9]*)
    for t in "${targets[@]}"; do run "$t" "${1:-60}"; done ;;
  *)
    [[ $# -eq 2 && "$2" =~ ^[0-9]+$ ]] || { echo "usage: scripts/fuzz.sh --list | --regress | [SECONDS] | TARGET SECONDS" >&2; exit 2; }
    run "$1" "$2" ;;
esac
