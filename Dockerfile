# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=$(git describe --tags --always) -t liveswitch_exporter .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
ARG BRANCH=unknown
RUN CGO_ENABLED=0 go build -trimpath -o /out/liveswitch_exporter \
      -ldflags "-s -w \
        -X github.com/prometheus/common/version.Version=${VERSION} \
        -X github.com/prometheus/common/version.Revision=${REVISION} \
        -X github.com/prometheus/common/version.Branch=${BRANCH} \
        -X github.com/prometheus/common/version.BuildUser=docker \
        -X github.com/prometheus/common/version.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)" \
      ./cmd/liveswitch_exporter \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/liveswitch_exporter /bin/liveswitch_exporter
# The store is /data itself (not ./data under the working directory), a
# volume owned by the user the exporter runs as. README's Docker section says
# so, and cmd/liveswitch_exporter's TestDockerfileAgreesWithReadme checks it.
COPY --from=build --chown=nonroot:nonroot /out/data /data
USER nonroot:nonroot
WORKDIR /data
ENV LIVESWITCH_EXPORTER_STORAGE_PATH=/data
VOLUME /data
EXPOSE 9818
ENTRYPOINT ["/bin/liveswitch_exporter"]
