#!/usr/bin/env bash
# The schema compiler must fail, naming the method, when a method lacks $requires.
set -euo pipefail
capnp=$1 plugin=$2 idl=$3 capnp_include=$4
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if ASAN_OPTIONS=detect_leaks=0 "$capnp" compile -I"$idl" -I"$capnp_include" --src-prefix="$idl/compiler/tests" \
     -o"$plugin":"$out" "$idl/authority.capnp" "$idl/compiler/tests/missing-requires.capnp" 2>"$out/err"; then
  echo "capnpc-capnet accepted a method without \$requires" >&2
  exit 1
fi
grep -q 'Annotated.forgotten' "$out/err" || { echo "error does not name the method:" >&2; cat "$out/err" >&2; exit 1; }
if grep -q 'Annotated.ok' "$out/err"; then echo "error names an annotated method" >&2; exit 1; fi
echo "refused as expected: $(tr '\n' ' ' < "$out/err")"
