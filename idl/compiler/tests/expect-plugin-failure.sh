#!/usr/bin/env bash
# Runs capnpc-capnet over one schema under idl/compiler/tests/ (with idl/config.capnp, whose
# knownCapabilities the plugin checks every $requires against) and passes only when the plugin
# exits non-zero, writes nothing, and its message contains EXPECTED (naming the offending method)
# but not CLEAN (a correctly annotated method of the same schema).
# Usage: expect-plugin-failure.sh CAPNP PLUGIN IDL_DIR CAPNP_INCLUDE SCHEMA EXPECTED CLEAN
set -euo pipefail
capnp=$1 plugin=$2 idl=$3 capnp_include=$4 schema=$5 expected=$6 clean=$7
tests="$idl/compiler/tests"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir "$out/gen"
compile() {   # compile OUTDIR SCHEMA...
  local dir=$1
  shift
  "$capnp" compile -I"$idl" -I"$capnp_include" --src-prefix="$idl" \
    --src-prefix="$tests" -o"$plugin":"$dir" "$@"
}
# Control: the same invocation over idl/ itself succeeds, so a failure below is the plugin's
# verdict on SCHEMA, not a broken harness.
mkdir "$out/control"
if ! compile "$out/control" "$idl"/*.capnp 2>"$out/err"; then
  echo "FAIL: the control run over $idl/*.capnp failed:" >&2
  cat "$out/err" >&2
  exit 1
fi
status=0
compile "$out/gen" "$idl/config.capnp" "$tests/$schema" 2>"$out/err" || status=$?
if ((status == 0)); then
  echo "FAIL: capnpc-capnet accepted $schema" >&2
  exit 1
fi
if ! grep -qF -- "$expected" "$out/err"; then
  echo "FAIL: the error does not say: $expected" >&2
  cat "$out/err" >&2
  exit 1
fi
if grep -qF -- "$clean" "$out/err"; then
  echo "FAIL: the error also names $clean, which is annotated correctly" >&2
  cat "$out/err" >&2
  exit 1
fi
if [[ -n "$(ls -A "$out/gen")" ]]; then
  echo "FAIL: capnpc-capnet wrote files although it failed: $(ls "$out/gen")" >&2
  exit 1
fi
echo "refused as expected (exit $status): $(tr '\n' ' ' < "$out/err")"
