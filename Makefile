# Developer shortcuts. The README's two commands need none of them.
IMAGE ?= ringtrain:dev
# Docker Compose v2 (the docker CLI plugin) where installed, v1 otherwise.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: test base-images image push compose-up test-containers bench bench-quick proto

test:
	go test -race ./...

# Local stand-ins for the Dockerfile's base images, where nothing can be
# pulled (no registry); nothing to do when they exist.
base-images:
	deploy/docker/base-images.sh

# Build the container image (the binary, its worker link, the MNIST files).
image:
	docker build -t $(IMAGE) .

push: image
	docker push $(IMAGE)

# A job on this machine: the coordinator and 4 worker containers.
compose-up: image
	RINGTRAIN_IMAGE=$(IMAGE) $(COMPOSE) -p ringtrain -f deploy/docker/compose.yaml up --scale worker=4

# The container tests alone (they build the stand-ins and the image).
test-containers:
	go test -count=1 -v ./deploy/docker

bench:
	go run ./cmd/ringbench -out docs/benchmarks

bench-quick:
	go run ./cmd/ringbench -quick -out bench-out

proto:
	go generate ./proto
