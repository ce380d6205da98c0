# Developer shortcuts. The README's two commands need none of them.
IMAGE ?= ringtrain:dev

.PHONY: test image push bench bench-quick proto

test:
	go test -race ./...

# Build the container image (both binaries and the MNIST files).
image:
	docker build -t $(IMAGE) .

push: image
	docker push $(IMAGE)

bench:
	go run ./cmd/ringbench -out docs/benchmarks

bench-quick:
	go run ./cmd/ringbench -quick -out bench-out

proto:
	go generate ./proto
