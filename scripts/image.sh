#!/usr/bin/env bash
# Builds liveswitch_exporter's container image without a Docker engine or a
# registry: static binaries for each architecture, each laid on an empty
# (`scratch`) base by buildah, written as OCI archives.
#
#   scripts/image.sh                  # linux/amd64 and linux/arm64 into ./out/image
#   ARCHES=amd64 OUT=/tmp/img scripts/image.sh
#
# The image gives what the Dockerfile's last stage gives (the test
# TestImageAgreesWithDockerfile holds them together): the binary as the
# entrypoint, the CA certificates (the Gateway's REST API over HTTPS needs
# them), the non-root user 65532 owning /data, the store at /data
# (LIVESWITCH_EXPORTER_STORAGE_PATH), port 9818 and the
# org.opencontainers.image.* labels.
#
# Environment: VERSION (default: git describe), REVISION (default: the
# commit), ARCHES (default "amd64 arm64"), OUT (default out/image),
# BUILDAH (default "buildah --storage-driver vfs"; the containers' own
# CONTAINERS_STORAGE_CONF is honoured, which is how the test keeps its
# storage private). Needs go, git and buildah (apt-get install buildah), and
# Debian's ca-certificates for the bundle it copies. Prints one line per
# archive: arch, path, bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-out/image}
ARCHES=${ARCHES:-amd64 arm64}
REVISION=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
BRANCH=${BRANCH:-$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)}
# The commit's time, not the clock's: two builds of one commit stamp the same
# date (SOURCE_DATE_EPOCH, as reproducible builds name it).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
read -r -a BUILDAH <<<"${BUILDAH:-buildah --storage-driver vfs}"
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
NAME=liveswitch_exporter
UID_GID=65532

[[ -s $CA_BUNDLE ]] || { echo "image.sh: no CA bundle at $CA_BUNDLE (apt-get install ca-certificates)" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The root file system every architecture shares: the user 65532 in
# /etc/passwd and /etc/group (so that tools show a name, as distroless'
# "nonroot" does), the CA bundle, and /data owned by that user.
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/data" "$rootfs/tmp"
echo "nonroot:x:$UID_GID:$UID_GID:nonroot:/data:/sbin/nologin" >"$rootfs/etc/passwd"
echo "nonroot:x:$UID_GID:" >"$rootfs/etc/group"
cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 1777 "$rootfs/tmp"

pkg=github.com/prometheus/common/version
ldflags="-s -w -X $pkg.Version=$VERSION -X $pkg.Revision=$REVISION -X $pkg.Branch=$BRANCH
  -X $pkg.BuildUser=image.sh -X $pkg.BuildDate=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d-%H:%M:%S)"

for arch in $ARCHES; do
  mkdir -p "$OUT/linux-$arch"
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "$ldflags" \
    -o "$OUT/linux-$arch/$NAME" ./cmd/liveswitch_exporter

  ctr=$("${BUILDAH[@]}" from --arch "$arch" --os linux scratch)
  # shellcheck disable=SC2064
  trap "rm -rf '$rootfs'; ${BUILDAH[*]} rm '$ctr' >/dev/null 2>&1 || true" EXIT
  "${BUILDAH[@]}" copy --quiet "$ctr" "$rootfs/etc" /etc
  "${BUILDAH[@]}" copy --quiet "$ctr" "$rootfs/tmp" /tmp
  "${BUILDAH[@]}" copy --quiet --chown "$UID_GID:$UID_GID" "$ctr" "$rootfs/data" /data
  "${BUILDAH[@]}" copy --quiet --chmod 0755 "$ctr" "$OUT/linux-$arch/$NAME" /bin/$NAME
  "${BUILDAH[@]}" config \
    --arch "$arch" --os linux \
    --user "$UID_GID:$UID_GID" \
    --workingdir /data \
    --env LIVESWITCH_EXPORTER_STORAGE_PATH=/data \
    --volume /data \
    --port 9818/tcp \
    --entrypoint "[\"/bin/$NAME\"]" --cmd '' \
    --created-by "scripts/image.sh" \
    --label org.opencontainers.image.title=$NAME \
    --label "org.opencontainers.image.description=Prometheus exporter of LiveSwitch server webhooks" \
    --label org.opencontainers.image.source=https://github.com/liveswitch-exporter/liveswitch_exporter \
    --label org.opencontainers.image.url=https://github.com/liveswitch-exporter/liveswitch_exporter \
    --label "org.opencontainers.image.version=$VERSION" \
    --label "org.opencontainers.image.revision=$REVISION" \
    --label "org.opencontainers.image.created=$CREATED" \
    "$ctr"
  archive="$OUT/${NAME}_linux_$arch.oci.tar"
  rm -f "$archive"
  "${BUILDAH[@]}" commit --quiet --format oci --disable-compression=false --rm --timestamp "$SOURCE_DATE_EPOCH" \
    "$ctr" "oci-archive:$archive:$NAME:$VERSION" >/dev/null
  trap 'rm -rf "$rootfs"' EXIT
  echo "$arch $archive $(stat -c %s "$archive")"
done
