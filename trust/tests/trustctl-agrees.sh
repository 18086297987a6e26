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
# RFC 7469 pins as OpenSSL computes them: the leaf's key, or a backup pin on the issuing CA.
expect good "accept" --pin "$(cat "$pki/good.pin")"
expect good "accept" --pin AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= --pin "$(cat "$pki/ca.pin")"
# trustctl pin prints the same value OpenSSL does.
for name in good ca; do
  got=$("$trustctl" pin "$pki/$name.pem" | cut -d' ' -f1)
  if [[ "$got" != "$(cat "$pki/$name.pin")" ]]; then
    echo "FAIL: trustctl pin $name: $got, openssl: $(cat "$pki/$name.pin")"
    fails=$((fails + 1))
  else
    echo "ok: trustctl pin $name = openssl's"
  fi
done
# Chains and CA rules, against an independent implementation: OpenSSL's `openssl verify` (with the
# chain as sent, at the guest's date) and trustctl must both accept or both refuse.
for cert in chain-full chain-extra chain-root chain-deep chain-deep-reversed chain-nointer chain-nokcs \
            chain-pathlen chain-nc-permitted chain-nc-excluded critext ecdsa256 ecdsa384 ed25519 chain-ed25519 chain-ecdsa; do
  awk '/BEGIN CERT/{n++} n==1' "$pki/$cert.pem" > "$dir/leaf.pem"
  awk '/BEGIN CERT/{n++} n>=2' "$pki/$cert.pem" > "$dir/rest.pem"
  untrusted=()
  [[ -s "$dir/rest.pem" ]] && untrusted=(-untrusted "$dir/rest.pem")
  if openssl verify -attime 1780272000 -purpose sslserver -verify_hostname devnet.test -CAfile "$pki/ca.pem" \
       "${untrusted[@]}" "$dir/leaf.pem" >/dev/null 2>&1; then oracle=accept; else oracle=deny; fi
  got=$("$trustctl" --pkg "$dir/pkg" --state "$dir/state" verify --chain "$pki/$cert.pem" --host devnet.test \
          --at 2026-06-01 | cut -d' ' -f1 || true)
  if [[ "$got" != "$oracle" ]]; then
    echo "FAIL: $cert: trustctl $got, openssl $oracle"
    fails=$((fails + 1))
  else
    echo "ok: $cert -> $got (openssl agrees)"
  fi
done
exit "$fails"
