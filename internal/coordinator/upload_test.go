package coordinator

import (
	"strings"
	"testing"

	pb "ringtrain/proto"
)

// TestUploadErrorQuotesAShortPrefix: an upload naming another job is
// refused quoting a short prefix of the job id it sent, not all of it.
func TestUploadErrorQuotesAShortPrefix(t *testing.T) {
	c := &coordinator{job: &pb.JobSpec{JobId: "j", MaxSteps: 10, StepsPerEpoch: 5}}
	err := c.checkUpload(&pb.StateHeader{JobId: strings.Repeat("x", 1<<20), Step: 5, EpochEnd: true}, 0, 0)
	if err == nil || len(err.Error()) > 256 || !strings.Contains(err.Error(), "job_id") {
		t.Fatalf("error of %d bytes: %.200q…", len(err.Error()), err)
	}
}
