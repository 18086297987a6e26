#!/usr/bin/env python3
"""Turns a daemon's cpu-profile lines (common/cpu-profile.h) into its top functions.

    scripts/symbolize-profile.py UART-LOG BUILD-DIR [COMPONENT] [TOP]

Each sampled address is module+offset. The daemon's own binary is symbolised with addr2line
against the build's unstripped copy (the guest runs the same code, stripped); shared libraries
against the host's copies of the same Debian packages: by their full symbol table when a detached
debug file with the library's build id is found (/usr/lib/debug/.build-id, or DEBUG_DIR: the
bench fetches glibc's, libc6-dbg, into .cache/debug), else by their exported symbols (`nm -D`),
where an internal function shows as the exported one before it, marked with `~`. Prints one line
per function: share of samples, samples, module, function.
"""
import bisect
import collections
import os
import re
import subprocess
import sys


def library_paths(binary):
    """basename -> path of the shared libraries the binary loads on this machine."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    paths = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+(\S+)", line) or re.match(r"\s*(/\S+)\s", line)
        if m:
            path = m.group(m.lastindex)
            paths[os.path.basename(path)] = path
            paths[os.path.basename(m.group(1))] = path
    return paths


def debug_file(path):
    """The detached debug file with the library's build id, if there is one."""
    notes = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", notes)
    if not m:
        return None
    bid = m.group(1)
    for root in (os.environ.get("DEBUG_DIR", ""), "/usr/lib/debug"):
        candidate = os.path.join(root, ".build-id", bid[:2], bid[2:] + ".debug") if root else ""
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def symbols(path):
    """(addresses, names) sorted: the full table from a debug file, else the exported ones (~)."""
    full = debug_file(path)
    cmd = ["nm", "--defined-only", "-C", "--numeric-sort", full] if full else \
          ["nm", "-D", "--defined-only", "-C", "--numeric-sort", path]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    addrs, names = [], []
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "TtWi":
            addrs.append(int(parts[0], 16))
            names.append(parts[2] if full else "~" + parts[2])
    return addrs, names


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    log, build = sys.argv[1], sys.argv[2]
    component = sys.argv[3] if len(sys.argv) > 3 else "netd"
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    # Each dump: its header and address lines; the bench announces what each covered
    # ("bench: <component> cpu-profile dump=N covers=WHAT", printed around the dump).
    dumps, covers = [], []
    pattern = re.compile(re.escape(component) + r": cpu-profile pc module=(\S+) offset=0x([0-9a-f]+) samples=(\d+)")
    for line in open(log, errors="replace"):
        if line.startswith(component + ": cpu-profile samples="):
            dumps.append((line.strip(), []))
        m = pattern.search(line)
        if m and dumps:
            dumps[-1][1].append((m.group(1), int(m.group(2), 16), int(m.group(3))))
        c = re.search(r"bench: " + re.escape(component) + r" cpu-profile dump=(\d+) covers=(\S+)", line)
        if c:
            covers.append(c.group(2))
    if not dumps:
        print("profile: no cpu-profile lines from %s in %s" % (component, log))
        return
    binary = os.path.join(build, component, component)
    libs = library_paths(binary)
    tables = {}
    for n, (head, samples) in enumerate(dumps):
        label = covers[n] if n < len(covers) else "dump %d" % (n + 1)
        report(component, binary, libs, tables, label, head, samples, top)


def report(component, binary, libs, tables, label, head, samples, top):
    total = int(re.search(r"samples=(\d+)", head).group(1)) or 1
    by_function = collections.Counter()
    own = [(o, c) for mod, o, c in samples if mod == component]
    if own:
        out = subprocess.run(["addr2line", "-f", "-C", "-e", binary] + ["0x%x" % o for o, _ in own], capture_output=True,
                             text=True).stdout.splitlines()
        for i, (_, count) in enumerate(own):
            name = out[2 * i] if 2 * i < len(out) else "?"
            by_function[(component, name)] += count
    for mod, offset, count in samples:
        if mod == component:
            continue
        path = libs.get(mod)
        if path is None:
            by_function[(mod, "+0x%x" % offset)] += count
            continue
        if path not in tables:
            tables[path] = symbols(path)
        addrs, names = tables[path]
        i = bisect.bisect_right(addrs, offset) - 1
        by_function[(mod, names[i] if i >= 0 else "+0x%x" % offset)] += count
    shown = sum(c for _, _, c in samples)
    print("profile: %s over %s: %d samples (%d in the %d addresses printed)" % (component, label, total, shown, len(samples)))
    for (mod, name), count in by_function.most_common(top):
        print("profile: %5.1f%% %5d  %-22s %s" % (100.0 * count / total, count, mod, name[:110]))
    per_module = collections.Counter()
    for (mod, _), count in by_function.items():
        per_module[mod] += count
    print("profile: by module: " + ", ".join("%s %.0f%%" % (m, 100.0 * c / total) for m, c in per_module.most_common()))

if __name__ == "__main__":
    main()
