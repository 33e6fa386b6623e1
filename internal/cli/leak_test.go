//go:build !mozaiks_runtime

package cli

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: the
// commands start runtimes, probes and Docker clients, and each must stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The FerretDB shared by the whole test binary
		// (internal/testutil/ferret.Start) lives until the process exits, by design.
		goleak.IgnoreAnyFunction("github.com/FerretDB/FerretDB/internal/clientconn.acceptLoop"),
		goleak.IgnoreAnyFunction("github.com/FerretDB/FerretDB/internal/clientconn.(*Listener).Run"),
		// ... and the front before it that makes its updates atomic.
		goleak.IgnoreAnyFunction("github.com/mozaiks/mozaiks/internal/testutil/ferret.(*front).accept"),
		goleak.IgnoreAnyFunction("github.com/mozaiks/mozaiks/internal/testutil/ferret.stopWhenDone"),
	)
}
