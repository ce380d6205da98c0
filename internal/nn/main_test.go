package nn

import (
	"testing"

	"ringtrain/internal/testmain"
)

func TestMain(m *testing.M) { testmain.Run(m) }
