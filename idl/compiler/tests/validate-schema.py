#!/usr/bin/env python3
"""Checks the generated network.schema.json: it is a valid draft 2020-12 schema, the shipped
config validates against it, and each config capd refuses is refused by the schema too, by the
rule we expect (so an editor flags what `capd --check` would).

Usage: validate-schema.py SCHEMA CONFIG
"""
import copy
import json
import sys

from jsonschema import Draft202012Validator


def main() -> int:
    schema_path, config_path = sys.argv[1], sys.argv[2]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    with open(config_path, encoding="utf-8") as f:
        shipped = json.load(f)

    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)

    failures = []
    errors = list(validator.iter_errors(shipped))
    if errors:
        failures.append(f"{config_path} is refused: " + "; ".join(e.message for e in errors))
    if list(validator.iter_errors({})):
        failures.append("an empty config (every default, which denies) is refused")

    def mutated(change):
        doc = copy.deepcopy(shipped)
        change(doc["network"])
        return doc

    def set_principal(name, value):
        return lambda n: n["principals"].__setitem__(name, value)

    # (what capd refuses, the config, the JSON Schema keyword that must refuse it, the path)
    cases = [
        ("an unknown top-level field", mutated(lambda n: n.__setitem__("devnets", {})),
         "additionalProperties", ["network"]),
        ("an unknown field in a principal", mutated(set_principal("x", {"uid": 5, "caps": []})),
         "additionalProperties", ["network", "principals", "x"]),
        ("a host that is not an IPv4 address", mutated(lambda n: n["hosts"].__setitem__("a.test", "10.0.2.256")),
         "pattern", ["network", "hosts", "a.test"]),
        ("an IPv4 address with a leading zero", mutated(lambda n: n["hosts"].__setitem__("a.test", "10.0.2.02")),
         "pattern", ["network", "hosts", "a.test"]),
        ("a host name with a space", mutated(lambda n: n["hosts"].__setitem__("a test", "10.0.2.2")),
         "pattern", ["network", "hosts"]),   # propertyNames reports the key's pattern at the map.
        ("uid 0", mutated(set_principal("root", {"uid": 0, "capabilities": []})),
         "minimum", ["network", "principals", "root", "uid"]),
        ("a principal without a uid", mutated(set_principal("nouid", {"capabilities": []})),
         "required", ["network", "principals", "nouid"]),
        ("an unknown capability", mutated(set_principal("p", {"uid": 7, "capabilities": ["net.everything"]})),
         "enum", ["network", "principals", "p", "capabilities", 0]),
        ("a reserved authority name as a capability", mutated(set_principal("p", {"uid": 7, "capabilities": ["held"]})),
         "enum", ["network", "principals", "p", "capabilities", 0]),
        ("devnet.enabled as a string", mutated(lambda n: n["devnet"].__setitem__("enabled", "true")),
         "type", ["network", "devnet", "enabled"]),
        ("an unknown cert time policy", mutated(lambda n: n["tls"].__setitem__("certTimePolicy", "ignoreValidity")),
         "enum", ["network", "tls", "certTimePolicy"]),
        ("maxBodyBytes beyond its $range", mutated(lambda n: n["http"].__setitem__("maxBodyBytes", 1073741825)),
         "maximum", ["network", "http", "maxBodyBytes"]),
        ("a timeout that is not an integer", mutated(lambda n: n["timeouts"].__setitem__("connectMs", 1.5)),
         "type", ["network", "timeouts", "connectMs"]),
        ("a pin expiry that is not a date", mutated(lambda n: n["tls"].__setitem__(
            "pins", {"devnet.test": {"spkiSha256": ["a", "b"], "expires": "2030-02-30"}})),
         "format", ["network", "tls", "pins", "devnet.test", "expires"]),
    ]
    for what, doc, keyword, path in cases:
        errs = list(validator.iter_errors(doc))
        if not any(e.validator == keyword and list(e.absolute_path) == path for e in errs):
            found = "; ".join(f"{e.validator} at {list(e.absolute_path)}: {e.message}" for e in errs) or "nothing"
            failures.append(f"{what}: expected {keyword} at {path}, found {found}")

    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    if failures:
        return 1
    print(f"{schema_path}: valid draft 2020-12 schema; accepts {config_path}; refuses {len(cases)} invalid configs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
