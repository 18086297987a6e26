#!/usr/bin/env bash
# Every capnet program (the daemons, the CLIs, selftest and the host fixtures) answers --help on stdout with exit 0 and --version, and reports a usage
# error on stderr with exit 2.   Usage: cli-conventions.sh BUILD_DIR
set -uo pipefail
build=$1
fails=0
for prog in capd/capd netd/netd fetchd/fetchd fetchd/capnet trust/trustctl selftest/selftest \
            selftest/tcp-echo selftest/tcp-bulk selftest/http-fixture selftest/tls-fixture; do
  name=${prog##*/}
  out=$("$build/$prog" --help 2>/dev/null); rc=$?
  [[ $rc == 0 && "$out" == *usage* ]] || { echo "FAIL: $name --help: rc=$rc"; fails=$((fails + 1)); }
  out=$("$build/$prog" --version 2>/dev/null); rc=$?
  [[ $rc == 0 && "$out" == "$name "* ]] || { echo "FAIL: $name --version: rc=$rc out=$out"; fails=$((fails + 1)); }
  err=$("$build/$prog" --no-such-option 2>&1 >/dev/null); rc=$?
  [[ $rc == 2 && -n "$err" ]] || { echo "FAIL: $name usage error: rc=$rc"; fails=$((fails + 1)); }
  ((fails)) || echo "ok: $name"
done
exit "$fails"
