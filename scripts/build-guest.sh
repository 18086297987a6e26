#!/usr/bin/env bash
# Builds the guest image: Debian's 6.1 kernel (vmlinux, booted through PVH), the kernel modules
# capnet needs with their dependencies, and an initramfs holding busybox, guest/init, capnet's
# daemons with their shared libraries, and the pkg:// content (/pkg).
#
# Outputs (under build/guest/): vmlinux, initrd.cpio. The kernel package is downloaded once into
# .cache/kernel/ (apt-get download; nothing is installed on this machine). The initramfs is rebuilt
# only when one of its inputs changed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CAPNET_BUILD_DIR:-$here/build}
out="$build/guest"
cache="$here/.cache/kernel"
mkdir -p "$out" "$cache"

# Modules the guest loads, in dependency order (resolved below from each .ko's modinfo).
wanted_modules=(crc32c_generic virtio_pci virtio_blk ext4 vfio_pci vfio_iommu_type1 virtio_net)

# --- nothing to do? -------------------------------------------------------------------------------
# The image's inputs, by name, size, modification and change time (nanoseconds) and inode: the
# daemons and their libraries (a package change touches dpkg's status file; `apt-get update` the
# lists, where a newer kernel package would appear), guest/, the pkg:// content and this script. A
# copy that keeps the modification time still gets a new change time. When
# they match the last build's, the image is current (the marker contract calls this before every
# run; without the check it cost about 4 s).
programs=(capd/capd netd/netd fetchd/fetchd fetchd/capnet selftest/selftest trust/trustctl virtio/virtio-probe)
inputs_stamp() {
  local f
  {
    for f in "${programs[@]}"; do [[ -e "$build/$f" ]] && echo "$build/$f"; done
    echo /var/lib/dpkg/status /var/lib/apt/lists /bin/busybox "${BASH_SOURCE[0]}" "$here/config/network.json"
    find "$here/guest" "$here/selftest/fixtures/web" -type f
    find "$build/selftest/tls" -maxdepth 1 -name '*.pem' 2>/dev/null
    find "$cache" -maxdepth 1 -name 'linux-image-*' 2>/dev/null
  } | LC_ALL=C sort | (xargs -d '\n' stat -c '%n %s %.9Y %.9Z %i' 2>/dev/null || true) | sha256sum | cut -d' ' -f1
}
stamp=$(inputs_stamp)
if [[ -f "$out/vmlinux" && -f "$out/initrd.cpio" && -f "$out/inputs.stamp" && "$(cat "$out/inputs.stamp")" == "$stamp" ]]; then
  exit 0
fi

# --- the kernel -----------------------------------------------------------------------------------
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-6\.1\.0-[0-9]+-amd64$/ {print $2; exit}')
if [[ -z "$kpkg" ]]; then
  # apt lists may be missing on a fresh machine.
  apt-get update -qq >/dev/null
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6\.1\.0-[0-9]+-amd64$/ {print $2; exit}')
fi
[[ -n "$kpkg" ]] || { echo "build-guest: cannot find Debian's linux-image-6.1.0-*-amd64 package" >&2; exit 1; }
kdir="$cache/$kpkg"
if [[ ! -f "$kdir/vmlinux" ]]; then
  echo "build-guest: fetching $kpkg (downloaded, unpacked; never installed)"
  rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp"
  (cd "$kdir.tmp" && apt-get download "$kpkg" >/dev/null 2>&1 && dpkg -x ./*.deb root && rm -f ./*.deb)
  # vmlinuz carries the kernel as an xz stream: find its magic and decompress it.
  python3 - "$kdir.tmp"/root/boot/vmlinuz-* "$kdir.tmp/vmlinux" <<'PY'
import lzma, sys
data = open(sys.argv[1], 'rb').read()
start = data.find(b'\xfd7zXZ\x00')
if start < 0:
    sys.exit('build-guest: no xz stream in ' + sys.argv[1])
dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
vmlinux = dec.decompress(data[start:])
if vmlinux[:4] != b'\x7fELF':
    sys.exit('build-guest: the xz stream is not an ELF kernel')
open(sys.argv[2], 'wb').write(vmlinux)
PY
  mv "$kdir.tmp" "$kdir"
fi
cp -u "$kdir/vmlinux" "$out/vmlinux"
moddir=$(echo "$kdir"/root/lib/modules/*)

# --- the initramfs tree ---------------------------------------------------------------------------
stage="$out/rootfs"
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,etc,proc,sys,dev,run,tmp,state,lib/modules,lib64,pkg/config,pkg/trust,pkg/fixtures/web,usr/bin}
cp /bin/busybox "$stage/bin/busybox"
for applet in $(/bin/busybox --list); do
  [[ "$applet" == busybox ]] || ln -sf busybox "$stage/bin/$applet"
done
cp "$here/guest/init" "$stage/init"
cp "$here/guest/etc/passwd" "$here/guest/etc/group" "$stage/etc/"
chmod 0755 "$stage/init"

# Modules: resolve `depends=` from each module's .modinfo (the package has no modules.dep).
python3 - "$moddir" "$stage/lib/modules" "${wanted_modules[@]}" <<'PY'
import os, re, shutil, sys
root, dest, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
index = {}
for d, _, files in os.walk(root):
    for f in files:
        if f.endswith('.ko'):
            index[f[:-3].replace('-', '_')] = os.path.join(d, f)
order, seen = [], set()
def visit(name):
    if name in seen:
        return
    seen.add(name)
    if name not in index:
        sys.exit('build-guest: module %s not in the kernel package' % name)
    m = re.search(rb'(?:^|\x00)depends=([^\x00]*)', open(index[name], 'rb').read())
    for dep in (m.group(1).decode().split(',') if m else []):
        if dep:
            visit(dep.replace('-', '_'))
    order.append(name)
for w in wanted:
    visit(w)
with open(os.path.join(dest, 'order'), 'w') as out:
    for name in order:
        shutil.copy(index[name], os.path.join(dest, name + '.ko'))
        out.write(name + '\n')
PY

# capnet's programs that exist in this build (`programs`, above), stripped, with their shared libraries.
libs=()
for p in "${programs[@]}"; do
  [[ -x "$build/$p" ]] || continue
  strip --strip-unneeded -o "$stage/usr/bin/$(basename "$p")" "$build/$p"
  while read -r lib; do libs+=("$lib"); done < <(ldd "$build/$p" | awk '/=> \// {print $3} /^\s*\/lib/ {print $1}')
done
for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
  dest="$stage$(dirname "$lib")"
  mkdir -p "$dest"
  strip --strip-unneeded -o "$dest/$(basename "$lib")" "$lib" 2>/dev/null || cp "$lib" "$dest/"
done
# The dynamic loader at the path binaries name.
if [[ -e /lib64/ld-linux-x86-64.so.2 ]]; then
  cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"
fi

# pkg:// content: the default config, trust roots and web fixtures (when built).
cp "$here/config/network.json" "$stage/pkg/config/network.json"
# The test PKI's root is the one root shipped in pkg://trust/ (selftest/fixtures/tls/gen-certs.sh).
[[ -f "$build/selftest/tls/ca.pem" ]] && cp "$build/selftest/tls/ca.pem" "$stage/pkg/trust/capnet-test-root.pem"
# A root the trust-persist profile installs at run time (not trusted until then).
mkdir -p "$stage/pkg/fixtures/trust"
[[ -f "$build/selftest/tls/persist-root.pem" ]] && cp "$build/selftest/tls/persist-root.pem" "$stage/pkg/fixtures/trust/"
[[ -d "$here/selftest/fixtures/web" ]] && cp -r "$here/selftest/fixtures/web/." "$stage/pkg/fixtures/web/"

# --- pack, only when something changed ------------------------------------------------------------
sum=$(cd "$stage" && find . -type f -o -type l | LC_ALL=C sort | xargs -d '\n' sha256sum 2>/dev/null | sha256sum | cut -d' ' -f1)
if [[ -f "$out/initrd.cpio" && -f "$out/initrd.sum" && "$(cat "$out/initrd.sum")" == "$sum" ]]; then
  echo "$stamp" > "$out/inputs.stamp"
  exit 0
fi
(cd "$stage" && find . | LC_ALL=C sort | /bin/busybox cpio -o -H newc 2>/dev/null) > "$out/initrd.cpio.tmp"
mv "$out/initrd.cpio.tmp" "$out/initrd.cpio"
echo "$sum" > "$out/initrd.sum"
echo "$stamp" > "$out/inputs.stamp"
echo "build-guest: $out/initrd.cpio ($(du -h "$out/initrd.cpio" | cut -f1)) kernel $kpkg"
