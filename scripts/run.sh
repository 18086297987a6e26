#!/usr/bin/env bash
# The main job: build capnet and the guest, boot it under QEMU with the default config (devnet
# off), run a short demo (a fixture fetch allowed, a real fetch refused with its reason), and leave
# you at a guest shell as the `app` principal, where `capnet fetch` works. Exit the shell to power
# the guest off.
#
#   ./scripts/run.sh            interactive
#   ./scripts/run.sh --batch    the demo only, then power off (for scripts; exit 0 when it ran)
#   ./scripts/run.sh --devnet   boot with devnet on (config/devnet-on.json on the state disk) and the local
#                               fixtures at devnet.test: as `selftest` (su selftest), capnet fetch https://devnet.test/
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
profile=interactive
state_config=""
for arg in "$@"; do
  case "$arg" in
    --batch) profile=demo ;;
    --devnet) state_config="$here/config/devnet-on.json" ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run: unknown option $arg" >&2; exit 2 ;;
  esac
done
"$here/scripts/deps.sh"
"$here/scripts/build.sh" plain
"$here/scripts/build-guest.sh"
out="$here/build/run"
fixtures=""
if [[ -n "$state_config" ]]; then
  # devnet.test (10.0.2.100) is served by the local fixtures, one process per guest connection:
  # https on 443 (wolfSSL, certificate from the build's test PKI, whose root the image trusts), http on 80.
  fixtures=",guestfwd=tcp:10.0.2.100:443-cmd:timeout 60 $here/build/selftest/tls-fixture --cert $here/build/selftest/tls/good --nonce run --log $out/fixture.log"
  fixtures+=",guestfwd=tcp:10.0.2.100:80-cmd:timeout 60 $here/build/selftest/http-fixture --nonce run --log $out/fixture.log"
fi
mkdir -p "$out/state/config" "$out/state/trust/installed"
rm -f "$out/state/config/network.json" "$out/fixture.log"
[[ -n "$state_config" ]] && cp "$state_config" "$out/state/config/network.json"
rm -f "$out/state.img"
mke2fs -q -F -t ext4 -d "$out/state" "$out/state.img" 32M
qemu=(qemu-system-x86_64 -accel tcg -M q35,kernel-irqchip=split -m 512 -smp 1 -cpu max
      -device intel-iommu,intremap=on
      -kernel "$here/build/guest/vmlinux" -initrd "$here/build/guest/initrd.cpio"
      -append "console=ttyS0 quiet intel_iommu=on no_timer_check panic=-1 capnet.profile=$profile"
      -rtc base=2026-06-01T00:00:00,clock=vm
      -drive "file=$out/state.img,if=virtio,format=raw"
      -netdev "user,id=n0,restrict=on,ipv6=off,net=10.0.2.0/24$fixtures"
      -device virtio-net-pci,netdev=n0,disable-legacy=on,iommu_platform=on,romfile=
      -no-reboot -nographic)
if [[ "$profile" == demo ]]; then
  log="$out/demo.log"
  timeout 120 "${qemu[@]}" < /dev/null > "$log" 2>&1 || true
  grep -E '^(demo:|capnet:|init: done)|fixture' "$log" | grep -v '^\[' || true
  [[ -f "$out/fixture.log" ]] && cat "$out/fixture.log"
  grep -q 'init: done' "$log"
else
  # The daemons' audit lines go to a second serial port, kept in a file: the guest shell (as app)
  # neither sees nor can forge them.
  : > "$out/audit.log"
  echo "run: audit lines of this boot are in $out/audit.log"
  exec "${qemu[@]}" -serial mon:stdio -serial "file:$out/audit.log"
fi
