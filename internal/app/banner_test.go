package app

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/workflow"
	"github.com/mozaiks/mozaiks/workflows"
)

func TestBannerPrintsConsoleURL(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	set, _ := workflow.LoadSet("", workflows.FS)
	model := llm.NewOpenAI(llm.Options{})
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "  console    http://localhost:8123/\n"},
		{[]string{"MOZAIKS_PUBLIC_URL=https://ai.example.com"}, "  console    https://ai.example.com/\n"},
		{[]string{"MOZAIKS_CONSOLE=false"}, ""},
	} {
		cfg, err := config.Load(config.LoadOptions{Environ: tc.env, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		banner(&b, cfg, "[::]:8123", "test", model, set, st)
		got := b.String()
		if tc.want == "" && strings.Contains(got, "console") || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%v: banner\n%s\nwant %q", tc.env, got, tc.want)
		}
	}
}
