package doctor_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/auth"
	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/doctor"
	"github.com/mozaiks/mozaiks/internal/doctor/doctortest"
	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/serve"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/workflow"
	"github.com/mozaiks/mozaiks/workflows"
)

// TestRealRuntimeWithAuthBehindNginx: with auth on, the diagnostics stay
// tokenless but bounded (each echo socket a few seconds and messages, a
// per-IP rate), and the doctor's checks through them still pass.
func TestRealRuntimeWithAuthBehindNginx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nginxPort := doctortest.FreePort(t)
	public := fmt.Sprintf("http://127.0.0.1:%d", nginxPort)
	environ := []string{"CORS_ORIGINS=" + public + ",http://app.example.com", "MOZAIKS_PUBLIC_URL=" + public,
		"AUTH_ENABLED=true", "AUTH_JWT_SECRET=doctor-test-secret-0123456789abcdef"}

	cfg, err := config.Load(config.LoadOptions{Environ: environ, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ShutdownTimeout = 5 * time.Second
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fake := llmtest.New(t)
	model := llm.NewOpenAI(llm.Options{APIKey: "sk-test-real-runtime", BaseURL: fake.URL()})
	set, _ := workflow.LoadSet("", workflows.FS)
	eng := engine.New(engine.Options{Workflows: set, LLM: model, DefaultModel: "gpt-4o-mini"})
	chats := chat.NewManager(chat.Options{Store: st, Runner: eng, Workflows: set, Owner: "doctor-test", LeaseTTL: 3 * time.Second})
	verifier, err := auth.New(auth.Options{Secret: cfg.AuthJWTSecret, Leeway: cfg.AuthClockSkew})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve.New(serve.Options{Config: cfg, Store: st, Workflows: set, LLM: model, Chats: chats, Auth: verifier})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("runtime did not stop")
		}
	})
	doctortest.StartNginxOn(t, nginxPort, ln.Addr().String(), doctortest.NginxGood)

	env, err := doctor.NewEnv(doctor.EnvOptions{Load: config.LoadOptions{Environ: environ, Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	reg := doctor.DefaultRegistry()
	checks, err := reg.Select([]string{"CFG01", "RT01", "CORS01", "WS01", "WS02", "WS03", "STR01"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	rep := doctor.Run(ctx, env, checks, doctor.RunOptions{})
	for _, c := range rep.Checks {
		if c.Severity != doctor.OK {
			t.Errorf("%s %s: %s (hint: %s) %v", c.Code, c.Severity, c.Message, c.Hint, c.Details)
		}
	}
}
