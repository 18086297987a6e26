#!/usr/bin/env bash
# The host side of the `tls-interop` QEMU profile (scripts/markers.conf): an independent TLS peer
# and an independent oracle for every case.
#
#   Peer:   OpenSSL's `openssl s_server` (not wolfSSL), one per case, on a loopback port; the guest
#           reaches it through guestfwd + socat. `-WWW` serves a file named after the run's nonce and
#           logs `FILE:<name>` for each request it answers: the server's own evidence of a fetch.
#   Oracle: `curl` on the host, against the same server, with the same roots (the test root only),
#           the same name, the same TLS floor and pins, at the guest's date (faketime).
#
#   WORK=DIR STAGE=DIR NONCE=HEX BUILD=DIR tls-interop.sh prepare
#       starts the servers, asks curl for each verdict, and writes: the guest's policy
#       (STAGE/config/network.json) and case list (STAGE/interop/cases), the guestfwd fixtures
#       (WORK/fixtures, one "IP:PORT PROGRAM ARGS" per line) and the servers' PIDs (WORK/pids).
#   WORK=DIR NONCE=HEX tls-interop.sh check
#       every case curl accepted was fetched by the guest (the server logged the guest's file) and
#       no refused case reached the server's application layer.
#   WORK=DIR tls-interop.sh stop
#       stops the servers this script started (by PID).
#
# Where capnet is deliberately stricter than curl, the case says so (the `stricter` column) and the
# prepare step fails unless curl really accepts it: the list of exceptions cannot go stale.
set -euo pipefail
cmd=${1:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${WORK:?WORK must name the work directory of the profile}"

# name | host | guest port | s_server arguments (files in the test PKI) | pins (PKI names) | stricter: why
cases=(
  "rsa-tls13|devnet.test|4430|-cert good.pem -key good.key -tls1_3||"
  "rsa-tls12-allowed|legacy.test|4431|-cert interop.pem -key interop.key -cert_chain interop-chain.pem -tls1_2||"
  "tls12-below-floor|devnet.test|4432|-cert good.pem -key good.key -tls1_2||"
  "ecdsa-chain|devnet.test|4433|-cert ecsigned.pem -key ecsigned.key -cert_chain inter-ec.pem||"
  "ed25519|devnet.test|4434|-cert ed25519.pem -key ed25519.key||"
  "out-of-order-extra|devnet.test|4435|-cert deep.pem -key deep.key -cert_chain deep-messy-chain.pem||"
  "ca-backup-pin|pinned.test|4436|-cert interop.pem -key interop.key -cert_chain interop-chain.pem|rogue inter1|"
  "pin-mismatch|badpin.test|4437|-cert interop.pem -key interop.key -cert_chain interop-chain.pem|rogue good|"
  "wrong-name|devnet.test|4438|-cert wronghost.pem -key wronghost.key||"
  "expired|devnet.test|4439|-cert expired.pem -key expired.key||"
  "no-keycertsign|devnet.test|4440|-cert badku.pem -key badku.key -cert_chain inter-nokcs.pem||"
  "no-subjectaltname|devnet.test|4441|-cert nosan.pem -key nosan.key||capnet never reads the common name (RFC 9525); curl falls back to it when there is no subjectAltName"
)
tls12_hosts=(legacy.test)
guest_ip=10.0.2.100
guest_date='2026-06-01 00:00:00'   # the guest's clock: qemu-test.sh's rtc_base

pin_of() { tr -d '\n\r' < "$BUILD/selftest/tls/$1.pin"; }

stop_servers() {
  [[ -f "$WORK/pids" ]] || return 0
  local pid
  while read -r pid; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  done < "$WORK/pids"
  rm -f "$WORK/pids"
}

# curl's verdict as capnet names it: accept, or the refusal reason capnet must give.
curl_verdict() {   # curl_verdict RC SSL_VERIFY_RESULT STDERR-FILE
  local rc=$1 v=$2 err=$3
  case "$rc" in
    0) echo accept ;;
    60)
      # curl checks the name itself, after OpenSSL validated the chain.
      if grep -qE "no alternative certificate subject name matches|does not match target host name" "$err"; then
        echo tls-hostname-mismatch
        return
      fi
      case "$v" in
        9) echo tls-not-yet-valid ;;
        10) echo tls-expired ;;
        2 | 18 | 19 | 20 | 21) echo tls-untrusted-issuer ;;
        62) echo tls-hostname-mismatch ;;
        24 | 25 | 32 | 47 | 48 | 79) echo tls-policy-violation ;;   # invalid CA, path length, keyCertSign, name constraints
        *) echo "unmapped-verify-$v" ;;
      esac ;;
    90) echo tls-pin-mismatch ;;
    35)
      if grep -qE "alert protocol version|unsupported protocol|no protocols available" "$err"; then
        echo tls-version-too-old
      else
        echo tls-handshake-failed
      fi ;;
    *) echo "unmapped-curl-$rc" ;;
  esac
}

# One case's verdict from the oracle (curl, and OpenSSL for path pins), written to
# $WORK/case-NAME.case and .expect; run for every case at once.
oracle() {   # oracle NAME HOST GUEST-PORT SERVER-PORT PINS STRICTER
  local name=$1 host=$2 gport=$3 port=$4 pins=$5 stricter=$6
  local tls="$BUILD/selftest/tls"
  # The oracle: curl with the same roots, name, TLS floor and pins, at the guest's date.
  local floor=--tlsv1.3 h
  for h in "${tls12_hosts[@]}"; do [[ "$h" == "$host" ]] && floor=--tlsv1.2; done
  local pinset="" p
  for p in $pins; do pinset+="${pinset:+;}sha256//$(pin_of "$p")"; done
  local out rc=0 verify verdict how=curl
  out=$(faketime -f "@$guest_date" curl -sS --max-time 20 -o "$WORK/oracle-$name.body" -w '%{ssl_verify_result}' \
    --cacert "$tls/ca.pem" --resolve "$host:$port:127.0.0.1" "$floor" "https://$host:$port/oracle-$NONCE.txt" 2> "$WORK/curl-$name.err") || rc=$?
  verify=${out:-0}
  verdict=$(curl_verdict "$rc" "$verify" "$WORK/curl-$name.err")
  if [[ "$verdict" == accept && -n "$pinset" ]]; then
    # RFC 7469: a pin matches any key of the validated path. curl's --pinnedpubkey checks only the
    # leaf's key, so: curl with the pins first; if it refuses, the pins of every certificate the
    # server sent (and of the root curl validated against), computed by OpenSSL.
    rc=0
    faketime -f "@$guest_date" curl -sS --max-time 20 -o /dev/null --cacert "$tls/ca.pem" --resolve "$host:$port:127.0.0.1" \
      "$floor" --pinnedpubkey "$pinset" "https://$host:$port/oracle-$NONCE.txt" 2>> "$WORK/curl-$name.err" || rc=$?
    if [[ "$rc" == 90 ]]; then
      how="curl+openssl-path-pins"
      verdict=tls-pin-mismatch
      local sent="$WORK/sent-$name" k c
      mkdir -p "$sent"
      { openssl s_client -connect "127.0.0.1:$port" -servername "$host" -showcerts < /dev/null 2>/dev/null; cat "$tls/ca.pem"; } |
        awk -v dir="$sent" '/-----BEGIN CERTIFICATE-----/{n++; on=1} on{print > (dir "/cert" n ".pem")} /-----END CERTIFICATE-----/{on=0}'
      for c in "$sent"/cert*.pem; do
        k=$(openssl x509 -in "$c" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
        for p in $pins; do [[ "$k" == "$(pin_of "$p")" ]] && verdict=accept; done
      done
    elif [[ "$rc" != 0 ]]; then
      verdict="unmapped-pinned-curl-$rc"
    fi
  fi
  if [[ "$verdict" == unmapped-* ]]; then
    echo "tls-interop: $name: curl's answer has no capnet reason: $verdict ($(head -c 300 "$WORK/curl-$name.err"))" >&2
    return 1
  fi
  local expect=$verdict
  if [[ -n "$stricter" ]]; then
    if [[ "$verdict" != accept ]]; then
      echo "tls-interop: $name is listed as a case where capnet is stricter than curl, but curl refuses it too ($verdict)" >&2
      return 1
    fi
    expect=tls-policy-violation
    how="stricter-than-curl"
  fi
  echo "case $name https://$host:$gport/guest-$NONCE.txt $expect $verdict" > "$WORK/case-$name.case"
  echo "$name $expect curl=$verdict how=$how" > "$WORK/case-$name.expect"
  echo "tls-interop: $name: curl says $verdict ($how); capnet must say $expect"
}

prepare() {
  : "${STAGE:?}" "${NONCE:?}" "${BUILD:?}"
  local tls="$BUILD/selftest/tls"
  command -v openssl >/dev/null && command -v curl >/dev/null && command -v faketime >/dev/null && command -v socat >/dev/null ||
    { echo "tls-interop: needs openssl, curl, faketime and socat (scripts/deps.sh installs them)" >&2; return 1; }
  # qemu-test.sh gives each run a fresh WORK (and writes this step's log into it).
  mkdir -p "$WORK" "$STAGE/interop" "$STAGE/config"
  : > "$WORK/fixtures"
  : > "$WORK/pids"
  : > "$WORK/expect"
  {
    echo "# The tls-interop profile's cases, written by scripts/tls-interop.sh:"
    echo "# case NAME URL EXPECTED CURL (accept or a refusal reason: what capnet must say, what curl said)"
    echo "nonce $NONCE"
  } > "$STAGE/interop/cases"

  # Every server first (they start in parallel), then every case's oracle at once: the cases are
  # independent, and one after another they cost about 6 s of waiting.
  local entry name host gport args pins stricter
  for entry in "${cases[@]}"; do
    IFS='|' read -r name host gport args pins stricter <<< "$entry"
    local www="$WORK/www-$name" log="$WORK/server-$name.log"
    mkdir -p "$www"
    printf 'capnet interop case=%s nonce=%s\n' "$name" "$NONCE" > "$www/guest-$NONCE.txt"
    printf 'capnet interop case=%s oracle\n' "$name" > "$www/oracle-$NONCE.txt"
    local -a sargs=()
    local a
    for a in $args; do
      if [[ "$a" == *.pem || "$a" == *.key ]]; then sargs+=("$tls/$a"); else sargs+=("$a"); fi
    done
    # Bounded: a server outlives nothing by more than 300 s even if this script is killed.
    (cd "$www" && exec timeout 300 openssl s_server -accept 127.0.0.1:0 "${sargs[@]}" -WWW > "$log" 2>&1) &
    echo $! >> "$WORK/pids"
  done
  local -a oracles=()
  for entry in "${cases[@]}"; do
    IFS='|' read -r name host gport args pins stricter <<< "$entry"
    local log="$WORK/server-$name.log" port="" i
    for i in $(seq 1 50); do
      port=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$log" | head -n 1)
      [[ -n "$port" ]] && break
      sleep 0.1
    done
    if [[ -z "$port" ]]; then
      echo "tls-interop: $name: s_server did not start: $(head -c 400 "$log")" >&2
      stop_servers
      # The oracles already started end quickly once their servers are gone; none outlives this.
      for p in "${oracles[@]}"; do wait "$p" 2>/dev/null || true; done
      return 1
    fi
    echo "$guest_ip:$gport socat -lf $WORK/socat.log STDIO TCP:127.0.0.1:$port" >> "$WORK/fixtures"
    oracle "$name" "$host" "$gport" "$port" "$pins" "$stricter" > "$WORK/case-$name.out" 2>&1 &
    oracles+=($!)
  done
  local failed=0 n=0
  for entry in "${cases[@]}"; do
    IFS='|' read -r name host gport args pins stricter <<< "$entry"
    if wait "${oracles[$n]}"; then
      cat "$WORK/case-$name.case" >> "$STAGE/interop/cases"
      cat "$WORK/case-$name.expect" >> "$WORK/expect"
      cat "$WORK/case-$name.out"
    else
      cat "$WORK/case-$name.out" >&2
      failed=1
    fi
    n=$((n + 1))
  done
  ((failed == 0)) || { stop_servers; return 1; }

  # The guest's policy: the default devnet-on config, plus the hosts, pins and TLS 1.2 exception
  # these cases need.
  python3 - "$here/config/devnet-on.json" "$STAGE/config/network.json" "$(pin_of rogue)" "$(pin_of inter1)" "$(pin_of good)" <<'PY'
import json, sys
src, dst, rogue, inter1, good = sys.argv[1:]
c = json.load(open(src))
n = c["network"]
for h in ("pinned.test", "badpin.test", "legacy.test"):
    n["hosts"][h] = "10.0.2.100"
n["tls"]["allowTls12"] = ["legacy.test"]
n["tls"]["pins"] = {
    "pinned.test": {"spkiSha256": [rogue, inter1], "expires": "2027-01-01"},
    "badpin.test": {"spkiSha256": [rogue, good], "expires": "2027-01-01"},
}
json.dump(c, open(dst, "w"), indent=2)
PY
}

check() {
  : "${NONCE:?}"
  local name expect rest bad=0
  while read -r name expect rest; do
    local log="$WORK/server-$name.log"
    if [[ "$expect" == accept ]]; then
      grep -qF "FILE:guest-$NONCE.txt" "$log" || { echo "tls-interop: $name: accepted, but s_server never served the guest's request" >&2; bad=1; }
    else
      if grep -qF "FILE:guest-$NONCE.txt" "$log"; then echo "tls-interop: $name: refused by policy, yet the guest's request reached s_server" >&2; bad=1; fi
    fi
  done < "$WORK/expect"
  return "$bad"
}

case "$cmd" in
  prepare) prepare ;;
  check) check ;;
  stop) stop_servers ;;
  *) echo "usage: WORK=DIR [STAGE=DIR NONCE=HEX BUILD=DIR] tls-interop.sh prepare|check|stop" >&2; exit 2 ;;
esac
