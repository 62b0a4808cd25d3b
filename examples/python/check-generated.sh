#!/usr/bin/env bash
# CI: fails when the committed stubs in gen/ are not what generate.sh makes
# from proto/ now (someone changed the contract and forgot to regenerate).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$here/generate.sh" "$tmp"
if ! diff -r -x __pycache__ "$tmp/seqcast" "$here/gen/seqcast"; then
  echo "examples/python/gen differs from what proto/ generates with $(protoc --version):" >&2
  echo "run examples/python/generate.sh and commit" >&2
  exit 1
fi
echo "examples/python/gen is up to date ($(protoc --version))"
