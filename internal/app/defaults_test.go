package app

import (
	"testing"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/llm"
)

// The default model is named once, in llm; the setting's default (config
// sits beside llm and does not import it) must say the same.
func TestDefaultModelNamedOnce(t *testing.T) {
	s, ok := config.SettingByKey("default_llm_model")
	if !ok || s.Default != llm.DefaultModel {
		t.Fatalf("DEFAULT_LLM_MODEL defaults to %q, llm.DefaultModel is %q", s.Default, llm.DefaultModel)
	}
}
