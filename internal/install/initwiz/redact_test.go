package initwiz

import (
	"strings"
	"testing"
)

// TestRedactorReplacesWholeValuesOnly: a short secret used to be cut out of
// every other value that contained it (issue #15, item 8).
func TestRedactorReplacesWholeValuesOnly(t *testing.T) {
	t.Parallel()
	r := newRedactor(
		map[string]string{envMongoPass: "pw1", EnvAPIKey: "sk-old"},
		map[string]string{envMongoPass: "pw1", EnvAPIKey: "sk-new-key"},
	)
	tests := []struct{ in, wantOld, wantNew string }{
		{"MONGO_URI=mongodb://u:pw1@mongo:27017/db", "MONGO_URI=mongodb://u:<redacted:MONGO_ROOT_PASSWORD>@mongo:27017/db", "MONGO_URI=mongodb://u:<redacted:MONGO_ROOT_PASSWORD>@mongo:27017/db"},
		{"DEFAULT_APP_ID=apw1x", "DEFAULT_APP_ID=apw1x", "DEFAULT_APP_ID=apw1x"},
		{"MOZAIKS_PROJECT=pw1-stack", "MOZAIKS_PROJECT=pw1-stack", "MOZAIKS_PROJECT=pw1-stack"},
		{`  OPENAI_API_KEY: "sk-old"`, `  OPENAI_API_KEY: "<old OPENAI_API_KEY>"`, `  OPENAI_API_KEY: "sk-old"`},
		{`  OPENAI_API_KEY: "sk-new-key"`, `  OPENAI_API_KEY: "sk-new-key"`, `  OPENAI_API_KEY: "<new OPENAI_API_KEY>"`},
		{"OPENAI_API_KEY=sk-new-key", "OPENAI_API_KEY=sk-new-key", "OPENAI_API_KEY=<new OPENAI_API_KEY>"},
	}
	for _, tt := range tests {
		if got := r.old.Replace(tt.in); got != tt.wantOld {
			t.Errorf("old side of %q = %q, want %q", tt.in, got, tt.wantOld)
		}
		if got := r.new.Replace(tt.in); got != tt.wantNew {
			t.Errorf("new side of %q = %q, want %q", tt.in, got, tt.wantNew)
		}
	}
	if strings.Contains(r.new.Replace("x pw1 y"), "pw1") {
		t.Error("a secret standing alone is not redacted")
	}
}
