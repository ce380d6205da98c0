package coordinator

import "testing"

// TestBucketBytesAuto: by default local workers reduce their gradient in
// one collective after the backward pass and remote workers overlap it in
// DefaultBucketBytes buckets; a size given is kept either way, and only
// AutoBucketBytes among negative sizes is valid.
func TestBucketBytesAuto(t *testing.T) {
	local, remote := DefaultConfig(), DefaultConfig()
	local.LocalWorkers, remote.Workers = 2, 2
	if got := local.bucketBytes(); got != 0 {
		t.Errorf("local workers, default: %d bucket bytes, want 0", got)
	}
	if got := remote.bucketBytes(); got != DefaultBucketBytes {
		t.Errorf("remote workers, default: %d bucket bytes, want %d", got, DefaultBucketBytes)
	}
	local.BucketBytes, remote.BucketBytes = 4096, 0
	if local.bucketBytes() != 4096 || remote.bucketBytes() != 0 {
		t.Errorf("sizes given: %d and %d, want 4096 and 0", local.bucketBytes(), remote.bucketBytes())
	}
	for _, n := range []int{AutoBucketBytes, 0, 4096} {
		local.BucketBytes = n
		if err := local.Validate(); err != nil {
			t.Errorf("bucket bytes %d: %v", n, err)
		}
	}
	local.BucketBytes = -2
	if local.Validate() == nil {
		t.Error("bucket bytes -2 accepted")
	}
}
