#!/usr/bin/env bash
# capd --explain --json: one JSON object (decision, reason, rules, problems, and url whenever the
# URL parsed, whatever the decision), exit 0 for allow and 1 for deny.
set -euo pipefail
capd=$1 config=$2
check() {   # check EXPECTED-RC PYTHON-CONDITION ARGS...
  local want=$1 cond=$2 rc=0 out
  shift 2
  out=$("$capd" --explain --json "$@") || rc=$?
  [[ "$rc" == "$want" ]] || { echo "FAIL: exit $rc, want $want: $*: $out"; exit 1; }
  python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert $cond, d" "$out" || { echo "FAIL: $*: $out"; exit 1; }
}
# Allowed, with the URL as the WHATWG standard reads it (hex IPv4 is not a name; :0443 is 443).
check 0 'd["decision"]=="allow" and d["url"]=={"scheme":"https","host":"devnet.test","port":443,"target":"/a?b"} and d["rules"]' \
  selftest 'https://DEVNET.test:0443/a?b#frag' --config "$config/devnet-on.json"
# Denied by policy: the URL is still reported.
check 1 'd["decision"]=="deny" and d["reason"].startswith("devnet-off") and d["url"]["host"]=="devnet.test"' \
  selftest 'https://devnet.test/' --config "$config/network.json"
check 1 'd["decision"]=="deny" and d["reason"].startswith("unknown-host") and d["url"]["host"]=="127.0.0.1"' \
  selftest 'http://0x7f.1/' --config "$config/devnet-on.json"
# A URL that does not parse: no url member, the parser's reason.
check 1 'd["decision"]=="deny" and "url" not in d and "ends in a number" in d["reason"]' \
  selftest 'https://devnet.1/' --config "$config/devnet-on.json"
check 1 'd["decision"]=="deny" and d["reason"].startswith("unknown-principal") and d["url"]["port"]==7' \
  nobody 'tcp://devnet.test:7' --config "$config/devnet-on.json"
echo "ok: capd --explain --json"
