#!/bin/sh
# Regenerates ringtrain.pb.go and ringtrain_grpc.pb.go from ringtrain.proto.
#
#   go generate ./proto        (or: sh proto/generate.sh)
#
# Pinned generators: protoc 3.21.12 (Debian bookworm's protobuf-compiler,
# `apt-get install protobuf-compiler`), and the Go plugins at the versions the
# tool directives of go.mod pin (protoc-gen-go v1.36.12, protoc-gen-go-grpc
# v1.5.1), built by `go tool`. TestGeneratedCodeIsCurrent fails when the
# committed code differs from what this script produces.
#
# With OUT=DIR the files are written to DIR instead of next to the .proto.
set -eu
cd "$(dirname "$0")"
want="libprotoc 3.21.12"
got=$(protoc --version 2>/dev/null || echo "no protoc")
if [ "$got" != "$want" ]; then
	echo "generate.sh: need $want (apt-get install protobuf-compiler), found: $got" >&2
	exit 1
fi
out=${OUT:-.}
protoc \
	--plugin=protoc-gen-go="$(go tool -n protoc-gen-go)" \
	--plugin=protoc-gen-go-grpc="$(go tool -n protoc-gen-go-grpc)" \
	--go_out="$out" --go_opt=paths=source_relative \
	--go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
	ringtrain.proto
