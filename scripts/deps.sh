#!/usr/bin/env bash
# Installs the Debian packages capnet needs that this machine lacks. Idempotent: when nothing
# is missing it runs no apt command at all.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config python3 openssl xz-utils
  capnproto libcapnp-dev libwolfssl-dev doctest-dev
  qemu-system-x86 busybox-static socat e2fsprogs dpkg-dev python3-jsonschema curl faketime
  clang-14 libfuzzer-14-dev libclang-rt-14-dev
  # the guest kernel's build (scripts/build-guest.sh): Kconfig's parser, timeconst, objtool
  flex bison bc libelf-dev
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo_cmd=()
  [[ "$(id -u)" == 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
