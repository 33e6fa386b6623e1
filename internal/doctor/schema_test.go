package doctor

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/doctor/doctortest"
)

func TestReportMatchesSchema(t *testing.T) {
	t.Parallel()
	// A real run over checks that need nothing running: fail, skip, ok and
	// details of several kinds all appear.
	env := testEnv(t, map[string]string{"DOCKER_HOST": "unix:///nonexistent/docker.sock", "_URL": "http://127.0.0.1:1", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}, "OPENAI_API_KEY=changeme\n")
	rep := Run(context.Background(), env, DefaultRegistry().Checks(), RunOptions{})
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if err := doctortest.ValidateReport(t, Schema, buf.Bytes()); err != nil {
		t.Fatalf("report does not match its schema: %v\n%s", err, buf.String())
	}
	for _, bad := range []string{
		`{"version":1,"started_at":"2026-11-27T00:00:00Z","checks":[{"code":"X01","name":"x","severity":"maybe","duration_ms":1,"message":"m","hint":"","details":{}}]}`,
		`{"version":1,"started_at":"yesterday","checks":[]}`,
		`{"version":1,"started_at":"2026-11-27T00:00:00Z","checks":[{"code":"X01","name":"x","severity":"fail","duration_ms":1,"message":"","hint":"","details":{}}]}`,
		`{"version":1,"started_at":"2026-11-27T00:00:00Z","checks":[{"code":"X01","name":"x","severity":"ok","duration_ms":1,"message":"m","hint":""}]}`,
	} {
		if err := doctortest.ValidateReport(t, Schema, []byte(bad)); err == nil {
			t.Errorf("schema accepts %s", bad)
		}
	}
	if !strings.Contains(buf.String(), `"details": {}`) && !strings.Contains(buf.String(), `"details": {`) {
		t.Error("details must always be an object")
	}
}
