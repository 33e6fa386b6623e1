package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/uerr"
)

// A shared secret shorter than 32 bytes stops `mozaiks serve` before it
// listens: exit 2, naming the setting, never printing the secret.
func TestServeRefusesShortSecret(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("AUTH_ENABLED", "true")
	t.Setenv("AUTH_JWT_SECRET", "tiny-secret")
	t.Setenv("MOZAIKS_DATA_DIR", dir)
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"serve", "--addr", "127.0.0.1:0"}, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != uerr.ExitUsage || !strings.Contains(errb.String(), "AUTH_JWT_SECRET") || strings.Contains(errb.String(), "tiny-secret") {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
}
