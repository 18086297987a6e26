#!/usr/bin/env bash
# Builds the guest image: a kernel of our own (Debian's linux-source-6.1 configured by
# guest/kernel.config: everything the guest needs built in, no modules; vmlinux, booted through PVH)
# and an initramfs holding busybox, guest/init, capnet's daemons with their shared libraries, and
# the pkg:// content (/pkg).
#
# Outputs (under build/guest/): vmlinux, kernel.config (the full configuration), initrd.cpio. The
# kernel is built once per source version and fragment into .cache/kernel/ (the source package is
# fetched with apt-get download; nothing is installed on this machine). The initramfs is rebuilt
# only when one of its inputs changed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CAPNET_BUILD_DIR:-$here/build}
out="$build/guest"
cache="$here/.cache/kernel"
mkdir -p "$out" "$cache"

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
    find "$cache" -maxdepth 2 -path '*/capnet-*/vmlinux' 2>/dev/null
  } | LC_ALL=C sort | (xargs -d '\n' stat -c '%n %s %.9Y %.9Z %i' 2>/dev/null || true) | sha256sum | cut -d' ' -f1
}
stamp=$(inputs_stamp)
if [[ -f "$out/vmlinux" && -f "$out/initrd.cpio" && -f "$out/inputs.stamp" && "$(cat "$out/inputs.stamp")" == "$stamp" ]]; then
  exit 0
fi

# --- the kernel -----------------------------------------------------------------------------------
# Debian's linux-source-6.1 (downloaded with apt-get download; nothing is installed), configured by
# guest/kernel.config on top of allnoconfig and built once per source version and configuration
# into .cache/kernel/capnet-VERSION-CONFIGHASH/vmlinux (about 6 minutes on 2 cores). The build is
# reproducible in what it names: no user, host or date of this machine goes into the image.
ksrc=linux-source-6.1
kfrag="$here/guest/kernel.config"
sudo_cmd=()
[[ "$(id -u)" == 0 ]] || sudo_cmd=(sudo)
source_version() { apt-cache show --no-all-versions "$ksrc" 2>/dev/null | awk '/^Version:/ {print $2; exit}' || true; }
kver=$(source_version)
if [[ -z "$kver" ]]; then
  # apt lists may be missing on a fresh machine.
  "${sudo_cmd[@]}" apt-get update -qq >/dev/null
  kver=$(source_version)
fi
[[ -n "$kver" ]] || { echo "build-guest: cannot find Debian's $ksrc package" >&2; exit 1; }
# The cache key: the fragment's settings (not its comments) and the recipe's version (raise it when
# the steps below change).
krecipe=1
khash=$( (grep '^CONFIG_' "$kfrag"; echo "recipe $krecipe") | sha256sum | cut -c1-12)
kdir="$cache/capnet-$kver-$khash"
# One kernel build at a time per cache (run.sh and test.sh may overlap): the lock is held until
# this script exits.
exec 9>"$cache/.lock"
flock 9
if [[ ! -f "$kdir/vmlinux" ]]; then
  echo "build-guest: building the guest kernel from $ksrc $kver with guest/kernel.config (once; a few minutes)"
  work="$cache/build.tmp"
  rm -rf "$work" && mkdir -p "$work"
  if ! (cd "$work" && apt-get download "$ksrc=$kver" >/dev/null 2>&1); then
    # Stale lists name a version the mirror no longer has: refresh them and take the current one.
    "${sudo_cmd[@]}" apt-get update -qq >/dev/null
    kver=$(source_version)
    kdir="$cache/capnet-$kver-$khash"
    (cd "$work" && apt-get download "$ksrc=$kver" >/dev/null 2>&1) || { echo "build-guest: apt-get download $ksrc=$kver failed" >&2; exit 1; }
  fi
  dpkg -x "$work"/"$ksrc"_*.deb "$work/pkg"
  tar -xJf "$work/pkg/usr/src/$ksrc.tar.xz" -C "$work"
  ktree="$work/$ksrc"
  # The build's date is the source's (the tarball's modification time, set by Debian's packaging).
  kdate=$(stat -c %Y "$work/pkg/usr/src/$ksrc.tar.xz")
  rm -rf "$work/pkg" "$work"/*.deb
  kmake=(make -C "$ktree" -s KBUILD_BUILD_USER=capnet KBUILD_BUILD_HOST=capnet
         "KBUILD_BUILD_TIMESTAMP=@$kdate" KBUILD_BUILD_VERSION=1)
  "${kmake[@]}" allnoconfig KCONFIG_ALLCONFIG="$kfrag" > "$work/config.log" 2>&1 \
    || { tail -n 20 "$work/config.log" >&2; echo "build-guest: configuring the kernel failed" >&2; exit 1; }
  # Every symbol the fragment names must come out as written: a Kconfig dependency that silently
  # drops one (VFIO, the IOMMU, the console) would otherwise show up only as a broken boot.
  bad=0
  while IFS= read -r line; do
    [[ "$line" =~ ^(CONFIG_[A-Z0-9_]+)=(.*)$ ]] || continue
    sym=${BASH_REMATCH[1]} val=${BASH_REMATCH[2]}
    if [[ "$val" == n ]]; then
      # Off means Kconfig knows the symbol and wrote it as unset (a misspelt one would be absent).
      grep -qxF "# $sym is not set" "$ktree/.config" || { echo "build-guest: $sym should be off (got: $(grep -E "^$sym=" "$ktree/.config" || echo absent))" >&2; bad=1; }
    else
      grep -qxF "$sym=$val" "$ktree/.config" || { echo "build-guest: $sym=$val did not hold (got: $(grep -E "^$sym=|^# $sym is not set" "$ktree/.config" || echo absent))" >&2; bad=1; }
    fi
  done < "$kfrag"
  ((bad == 0)) || exit 1
  "${kmake[@]}" -j"$(nproc)" vmlinux > "$work/build.log" 2>&1 \
    || { tail -n 30 "$work/build.log" >&2; echo "build-guest: building the kernel failed (log: $work/build.log)" >&2; exit 1; }
  rm -rf "$cache"/capnet-*
  mkdir -p "$kdir.tmp"
  cp "$ktree/vmlinux" "$ktree/.config" "$kdir.tmp/"
  mv "$kdir.tmp" "$kdir"
  rm -rf "$work"
fi
# By content, not by time: a cache restored with old times must not leave a previous kernel here.
cmp -s "$kdir/vmlinux" "$out/vmlinux" || cp "$kdir/vmlinux" "$out/vmlinux"
cmp -s "$kdir/.config" "$out/kernel.config" || cp "$kdir/.config" "$out/kernel.config"

# --- the initramfs tree ---------------------------------------------------------------------------
stage="$out/rootfs"
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,etc,proc,sys,dev,run,tmp,state,lib64,pkg/config,pkg/trust,pkg/fixtures/web,usr/bin}
cp /bin/busybox "$stage/bin/busybox"
for applet in $(/bin/busybox --list); do
  [[ "$applet" == busybox ]] || ln -sf busybox "$stage/bin/$applet"
done
cp "$here/guest/init" "$stage/init"
cp "$here/guest/etc/passwd" "$here/guest/etc/group" "$stage/etc/"
chmod 0755 "$stage/init"

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
echo "build-guest: $out/initrd.cpio ($(du -h "$out/initrd.cpio" | cut -f1)) kernel $ksrc $kver (guest/kernel.config)"
