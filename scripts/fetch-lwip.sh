#!/usr/bin/env bash
# Fetches and unpacks Debian's lwip source package into .cache/lwip/ (once). Uses a private
# deb-src list derived from this machine's own deb lines, with private list and cache
# directories: the machine's apt configuration is left untouched.
# Prints the path of the unpacked source tree.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="$here/.cache/lwip"
if [[ -f "$cache/src.path" ]] && [[ -d "$(cat "$cache/src.path")/src/core" ]]; then
  cat "$cache/src.path"
  exit 0
fi
rm -rf "$cache" && mkdir -p "$cache/apt/lists/partial" "$cache/apt/archives/partial" "$cache/src"

# deb-src lines for the same mirrors and suites the machine uses for deb lines.
list="$cache/apt/sources.list"
: > "$list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [[ -f "$f" ]] || continue
  case "$f" in
    *.sources)
      awk 'BEGIN{RS=""; FS="\n"}
           { t=""; u=""; s=""; c="";
             for (i=1;i<=NF;i++) {
               if ($i ~ /^Types:/) t=$i; if ($i ~ /^URIs:/) u=substr($i,7);
               if ($i ~ /^Suites:/) s=substr($i,9); if ($i ~ /^Components:/) c=substr($i,13) }
             if (t ~ /deb/ && u ~ /debian/ && s ~ /bookworm/ && s !~ /security/) {
               n=split(s, suites, " "); for (j=1;j<=n;j++) print "deb-src [trusted=no] " u " " suites[j] " " c } }' "$f" >> "$list" ;;
    *) awk '$1=="deb" && $0 ~ /bookworm/ && $0 !~ /security/ { $1="deb-src"; print }' "$f" >> "$list" ;;
  esac
done
sed -i 's/ \[trusted=no\]//' "$list"
[[ -s "$list" ]] || { echo "fetch-lwip: no Debian bookworm deb lines to derive a deb-src list from" >&2; exit 1; }

apt_opts=(-o "Dir::Etc::SourceList=$list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache=$cache/apt"
          -o "Debug::NoLocking=1")
apt-get "${apt_opts[@]}" update -qq >/dev/null
(cd "$cache/src" && apt-get "${apt_opts[@]}" source -qq lwip >/dev/null 2>&1)
src=$(find "$cache/src" -maxdepth 1 -mindepth 1 -type d -name 'lwip-*' | head -n 1)
[[ -n "$src" && -d "$src/src/core" ]] || { echo "fetch-lwip: the lwip source package did not unpack" >&2; exit 1; }
echo "$src" > "$cache/src.path"
echo "$src"
