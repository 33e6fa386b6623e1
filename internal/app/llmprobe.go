package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// LLMProbeReport is what `mozaiks healthcheck --llm` prints: the answer of
// GET {base}/models as the runtime's own client sees it from where it runs.
type LLMProbeReport struct {
	BaseURL string   `json:"base_url"`
	Status  int      `json:"status"` // HTTP status; 0 when no answer came
	Models  []string `json:"models,omitempty"`
	Error   string   `json:"error,omitempty"` // user-safe (never the key)
}

// ProbeLLM lists the models of base with key through internal/llm (one
// attempt) and writes an LLMProbeReport to w. The doctor runs it inside the
// runtime container when the base URL names a compose service, which only
// resolves there.
func ProbeLLM(ctx context.Context, base, key string, timeout time.Duration, w io.Writer) error {
	c := llm.NewOpenAI(llm.Options{APIKey: key, BaseURL: base, MaxRetries: -1, Timeout: timeout})
	ids, err := c.Models(ctx)
	rep := LLMProbeReport{BaseURL: base, Status: 200, Models: ids}
	if err != nil {
		rep = LLMProbeReport{BaseURL: base, Error: err.Error()}
		var le *llm.Error
		if errors.As(err, &le) {
			rep.Status, rep.Error = le.Status, le.Msg
		}
	}
	if werr := json.NewEncoder(w).Encode(rep); werr != nil {
		return werr
	}
	if err != nil {
		return uerr.Wrap(err, uerr.ExitFailed, "GET "+base+"/models: "+rep.Error, "")
	}
	return nil
}
