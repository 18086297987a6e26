#!/usr/bin/env bash
# trustctl verify gives, for every fixture certificate, the outcome netd's TLS gives (the same
# expectations as netd/tls/tests/wolf-tls-test.cpp), at the guest's date.
set -euo pipefail
trustctl=$1 pki=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/pkg/trust"
cp "$pki/ca.pem" "$dir/pkg/trust/"
fails=0
expect() {   # expect CERT OUTCOME [extra args]
  local cert=$1 want=$2
  shift 2
  local got
  got=$("$trustctl" --pkg "$dir/pkg" --state "$dir/state" verify --chain "$pki/$cert.pem" --host devnet.test --at 2026-06-01 "$@" | cut -d' ' -f1-2 || true)
  if [[ "$got" != "$want"* ]]; then
    echo "FAIL: $cert: got '$got', want '$want'"
    fails=$((fails + 1))
  else
    echo "ok: $cert -> $got"
  fi
}
expect good "accept"
expect expired "deny reason=expired"
expect notyet "deny reason=not-yet-valid"
expect wronghost "deny reason=hostname-mismatch"
expect untrusted "deny reason=untrusted-issuer"
expect rsa1024 "deny reason=policy-violation"
expect sha1 "deny reason=policy-violation"
expect nosan "deny reason=policy-violation"
expect expired "accept" --time-policy ignore-validity
expect good "deny reason=pin-mismatch" --pin AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
expect good "accept" --pin AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= --pins-expire 2026-05-01
exit "$fails"
