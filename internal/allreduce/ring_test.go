package allreduce_test

import (
	"testing"

	"go.uber.org/goleak"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/allreduce/allreducetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemTransportConformance(t *testing.T) {
	allreducetest.Run(t, func(t *testing.T, n int) []allreduce.Transport { return allreduce.NewMemRing(n) })
}
