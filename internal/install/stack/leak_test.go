package stack

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: the
// checks and the engine calls run concurrently, and each must be stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
