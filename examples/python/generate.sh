#!/usr/bin/env bash
# Regenerates the Python stubs (gen/seqcast/v1) from proto/seqcast/v1 with
# Debian's protoc (protobuf-compiler) and grpc_python_plugin
# (protobuf-compiler-grpc). Usage: examples/python/generate.sh [OUT_DIR]
#
# Only seqcast/v1 is generated: the client needs neither health nor
# reflection, and a generated `grpc/` package would shadow grpcio's own
# `grpc` module on the import path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto="$here/../../proto"
out="${1:-$here/gen}"

for tool in protoc grpc_python_plugin; do
  command -v "$tool" >/dev/null || {
    echo "$tool not found: apt-get install -y protobuf-compiler protobuf-compiler-grpc" >&2
    exit 1
  }
done

# Clean first, like buf's `clean: true`: a file whose .proto was removed must go too.
rm -rf "$out/seqcast"
mkdir -p "$out"
# google/protobuf/timestamp.proto comes with protoc's own include path.
protoc -I "$proto" \
  --python_out="$out" --pyi_out="$out" \
  --grpc_python_out="$out" --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
  "$proto"/seqcast/v1/*.proto
