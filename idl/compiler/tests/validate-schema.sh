#!/usr/bin/env bash
# Validates the generated JSON Schema with python3-jsonschema (scripts/deps.sh installs it).
# Usage: validate-schema.sh SCHEMA CONFIG
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Debian's interpreter carries python3-jsonschema; a python3 earlier on PATH (a pyenv, a venv) may not.
for py in /usr/bin/python3 python3; do
  if command -v "$py" >/dev/null && "$py" -c 'import jsonschema' 2>/dev/null; then
    exec "$py" "$here/validate-schema.py" "$@"
  fi
done
echo "FAIL: no python3 with the jsonschema module; install python3-jsonschema (scripts/deps.sh)" >&2
exit 1
