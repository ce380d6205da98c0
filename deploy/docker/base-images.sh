#!/bin/sh
# Local stand-ins for the two base images the Dockerfile names, for a Docker
# engine that cannot pull them (no registry). A machine that can pull never
# needs this script: for an image that is missing it tries docker pull
# first, and makes the stand-in only when that fails.
#
#   deploy/docker/base-images.sh        # pull or make whichever is missing
#   deploy/docker/base-images.sh -f     # make both stand-ins again
#
# golang:1.26-bookworm
#   A Debian bookworm root file system from debootstrap (minbase) with this
#   machine's Go toolchain (GOROOT, 1.26.x) at /usr/local/go, imported with
#   "docker import" and configured as the official image is (PATH,
#   GOPATH=/go, GOTOOLCHAIN=local). Its CA bundle is this machine's
#   (CA_BUNDLE, default /etc/ssl/certs/ca-certificates.crt): the Dockerfile's
#   module download (go build) reaches the module proxy (GOPROXY, default
#   proxy.golang.org) over HTTPS from inside the build, and a mirror or
#   TLS-inspecting proxy this machine trusts must be trusted there too.
# gcr.io/distroless/static-debian12:nonroot
#   What distroless/static holds, taken from that root file system: no shell,
#   no package manager, CA certificates, time zones, /etc/passwd and
#   /etc/group with root, nobody and nonroot (uid/gid 65532), /tmp, and
#   /home/nonroot as the nonroot user's working directory; USER 65532.
#
# Needs root (debootstrap), debootstrap, Docker, Go 1.26 and a Debian mirror
# (DEBIAN_MIRROR, default http://deb.debian.org/debian). About 2 minutes and
# 250 MB of downloads the first time; nothing when both images exist.
set -eu

BUILDER=golang:1.26-bookworm
RUNTIME=gcr.io/distroless/static-debian12:nonroot
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
FORCE=0
[ "${1:-}" = "-f" ] && FORCE=1

say() { echo "base-images: $*" >&2; }
die() { say "$*"; exit 1; }
have() { [ "$FORCE" -eq 0 ] && docker image inspect "$1" >/dev/null 2>&1; }
pulled() { [ "$FORCE" -eq 0 ] && docker pull -q "$1" >/dev/null 2>&1 && say "pulled $1"; }

docker version >/dev/null 2>&1 || die "no Docker daemon answers (docker version failed)"
if have "$BUILDER" && have "$RUNTIME"; then
	say "$BUILDER and $RUNTIME exist; nothing to do (-f to make them again)"
	exit 0
fi

WORK=$(mktemp -d /tmp/ringtrain-base.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM

if ! have "$BUILDER" && ! pulled "$BUILDER"; then
	[ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
	command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (apt-get install debootstrap)"
	GOROOT=$(go env GOROOT) || die "no Go toolchain: go env GOROOT failed"
	GOVERSION=$(go env GOVERSION)
	case "$GOVERSION" in
	go1.26|go1.26.*) ;;
	*) die "$BUILDER needs Go 1.26; this machine's go is $GOVERSION" ;;
	esac
	ROOT="$WORK/bookworm"
	say "debootstrap bookworm from $MIRROR"
	debootstrap --variant=minbase --include=ca-certificates,tzdata bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
		|| { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
	cp "$CA_BUNDLE" "$ROOT/etc/ssl/certs/ca-certificates.crt" || die "cannot read CA_BUNDLE $CA_BUNDLE"
	rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/share/doc "$ROOT"/usr/share/man "$ROOT"/usr/share/locale
	say "adding $GOVERSION from $GOROOT"
	mkdir -p "$ROOT/usr/local/go" "$ROOT/go/bin" "$ROOT/go/src"
	chmod 1777 "$ROOT/go"
	# Whole toolchain except its tests and the API history the build never reads.
	tar -C "$GOROOT" --exclude=./test --exclude=./api -cf - . | tar -C "$ROOT/usr/local/go" -xf -
	tar --numeric-owner -C "$ROOT" -cf - . | docker import \
		-m "ringtrain stand-in: debootstrap bookworm + $GOVERSION (deploy/docker/base-images.sh)" \
		-c 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		-c 'ENV GOLANG_VERSION='"${GOVERSION#go}" \
		-c 'ENV GOTOOLCHAIN=local' \
		-c 'ENV GOPATH=/go' \
		-c 'WORKDIR /go' \
		-c 'CMD ["bash"]' \
		- "$BUILDER" >/dev/null
	rm -rf "$ROOT"
	say "made $BUILDER"
fi

if ! have "$RUNTIME" && ! pulled "$RUNTIME"; then
	ROOT="$WORK/static"
	mkdir -p "$ROOT/etc/ssl/certs" "$ROOT/usr/share" "$ROOT/tmp" "$ROOT/home/nonroot" "$ROOT/root"
	# Certificates and time zones from the builder's Debian.
	docker run --rm --network none "$BUILDER" tar -C / -cf - etc/ssl/certs/ca-certificates.crt usr/share/zoneinfo etc/os-release \
		| tar -C "$ROOT" -xf -
	cat >"$ROOT/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
	cat >"$ROOT/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
GROUP
	echo 'hosts: files dns' >"$ROOT/etc/nsswitch.conf"
	chmod 1777 "$ROOT/tmp"
	chmod 700 "$ROOT/root" "$ROOT/home/nonroot"
	chown 65532:65532 "$ROOT/home/nonroot"
	[ ! -e "$ROOT/bin/sh" ] || die "the runtime image must have no shell"
	tar --numeric-owner -C "$ROOT" -cf - . | docker import \
		-m "ringtrain stand-in: distroless/static nonroot equivalent (deploy/docker/base-images.sh)" \
		-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		-c 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
		-c 'USER 65532' \
		-c 'WORKDIR /home/nonroot' \
		- "$RUNTIME" >/dev/null
	say "made $RUNTIME"
fi
