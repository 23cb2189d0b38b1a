# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=$(git describe --tags --always) \
#          --build-arg REVISION=$(git rev-parse HEAD) -t liveswitch_exporter .
# Without Docker, scripts/image.sh builds the same image with buildah (and for
# arm64 too); TestImageAgreesWithDockerfile holds the two together. See
# docs/container.md.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
ARG BRANCH=unknown
ARG CREATED=unknown
# The root file system of the image: the static binary, the CA certificates
# (the Gateway's REST API over HTTPS needs them), the user 65532 by name, and
# /tmp; /data, the store, comes separately to be owned by that user.
RUN CGO_ENABLED=0 go build -trimpath -o /out/rootfs/bin/liveswitch_exporter \
      -ldflags "-s -w \
        -X github.com/prometheus/common/version.Version=${VERSION} \
        -X github.com/prometheus/common/version.Revision=${REVISION} \
        -X github.com/prometheus/common/version.Branch=${BRANCH} \
        -X github.com/prometheus/common/version.BuildUser=docker \
        -X github.com/prometheus/common/version.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)" \
      ./cmd/liveswitch_exporter \
 && mkdir -p /out/rootfs/etc/ssl/certs /out/rootfs/tmp /out/data \
 && cp /etc/ssl/certs/ca-certificates.crt /out/rootfs/etc/ssl/certs/ \
 && echo 'nonroot:x:65532:65532:nonroot:/data:/sbin/nologin' > /out/rootfs/etc/passwd \
 && echo 'nonroot:x:65532:' > /out/rootfs/etc/group \
 && chmod 1777 /out/rootfs/tmp

FROM scratch
COPY --from=build /out/rootfs/ /
# The store is /data itself (not ./data under the working directory), a
# volume owned by the user the exporter runs as. docs/container.md says so,
# and cmd/liveswitch_exporter's TestDockerfileAgreesWithDocs checks it.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV LIVESWITCH_EXPORTER_STORAGE_PATH=/data
VOLUME /data
EXPOSE 9818
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="liveswitch_exporter" \
      org.opencontainers.image.description="Prometheus exporter of LiveSwitch server webhooks" \
      org.opencontainers.image.source="https://github.com/liveswitch-exporter/liveswitch_exporter" \
      org.opencontainers.image.url="https://github.com/liveswitch-exporter/liveswitch_exporter" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
ENTRYPOINT ["/bin/liveswitch_exporter"]
