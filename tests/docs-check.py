#!/usr/bin/env python3
"""Checks the docs against the code where a machine can (run by CTest):
  reasons   every refusal reason (ConnectRefusal, GrantRefusal, FetchRefusal) in security-model.md
  config    every field of the config (schemas/network.schema.json) in config-reference.md
  profiles  every QEMU profile of scripts/markers.conf in docs/testing/markers.md
Usage: docs-check.py SOURCE_DIR WHAT
"""
import json
import re
import sys

root, what = sys.argv[1], sys.argv[2]
read = lambda p: open(f"{root}/{p}", encoding="utf-8").read()
missing = []
checked = []

if what == "reasons":
    src = read("idl/cap.capnp") + read("idl/net.capnp") + read("idl/fetch.capnp")
    doc = read("docs/networking/security-model.md")
    for enum in ("ConnectRefusal", "GrantRefusal", "FetchRefusal"):
        body = re.search(r"enum " + enum + r" \{(.*?)\n\}", src, re.S).group(1)
        for name in re.findall(r"^\s*(\w+) @\d+;", body, re.M):
            kebab = re.sub(r"([A-Z])", lambda m: "-" + m.group(1).lower(), name)
            checked.append(kebab)
            if f"`{kebab}`" not in doc:
                missing.append(f"{enum}.{name} (`{kebab}`) is not in docs/networking/security-model.md")
elif what == "config":
    schema = json.loads(read("schemas/network.schema.json"))
    doc = read("docs/networking/config-reference.md")
    defs = schema.get("$defs", schema.get("definitions", {}))

    def resolve(node):
        ref = node.get("$ref")
        return defs[ref.split("/")[-1]] if ref else node

    def walk(node, path):
        node = resolve(node)
        props = node.get("properties")
        if props:
            for key, sub in props.items():
                walk(sub, f"{path}.{key}" if path else key)
        elif path.count(".") >= 1:
            checked.append(path)
            if f"`{path}`" not in doc and f"`{path}[" not in doc:
                missing.append(f"config field {path} is not in docs/networking/config-reference.md")
        if node.get("additionalProperties") not in (None, False) and isinstance(node.get("additionalProperties"), dict):
            if f"`{path}`" not in doc:
                missing.append(f"config map {path} is not in docs/networking/config-reference.md")

    walk(schema, "")
elif what == "profiles":
    conf = read("scripts/markers.conf")
    doc = read("docs/testing/markers.md")
    for profile in re.findall(r"^\[([a-z0-9-]+)\]$", conf, re.M):
        checked.append(profile)
        if profile != "global" and f"`{profile}`" not in doc:
            missing.append(f"profile {profile} is not in docs/testing/markers.md")
else:
    sys.exit(f"docs-check: unknown check {what}")

for m in missing:
    print("missing:", m)
print(f"docs-check {what}: {len(checked)} checked, {'FAIL' if missing else 'ok'}")
sys.exit(1 if missing or not checked else 0)
