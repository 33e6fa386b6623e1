package initwiz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/llm"
	storemongo "github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

const defaultOpenAIBase = "https://api.openai.com/v1"

// checkMongo pings an external Mongo once, through the store's own probe:
// the same connect policy and the same classified causes as the runtime and
// the doctor, never the driver's text (which may echo parts of the URI).
func checkMongo(ctx context.Context, uri string, timeout time.Duration) error {
	_, err := storemongo.Probe(ctx, uri, storemongo.ProbeOptions{Timeout: timeout, AppName: "mozaiks-init"})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return interrupted(ctx.Err())
	}
	c := storemongo.Classify(err)
	shown := config.RedactURI(uri)
	if c.Kind == storemongo.CauseURI {
		return uerr.Wrap(err, uerr.ExitUsage, "the MongoDB URI "+shown+" is not valid", "fix --mongo-uri (MONGO_URI)")
	}
	return uerr.Prerequisite(err, "cannot reach MongoDB at "+shown+": "+c.Msg,
		c.Hint+"; --skip-checks writes the files without this check")
}

// checkLLM lists the endpoint's models with the key, through internal/llm
// (the client the runtime uses, one attempt): the one request that proves
// both the base URL and the key. An unlisted model only warns, since some
// compatible servers list a subset.
func checkLLM(ctx context.Context, client *http.Client, base, key, model string, warn io.Writer) error {
	if base == "" {
		base = defaultOpenAIBase
	}
	url := strings.TrimRight(base, "/") + "/models"
	c := llm.NewOpenAI(llm.Options{APIKey: key, BaseURL: base, HTTPClient: client, MaxRetries: -1, Timeout: client.Timeout})
	ids, err := c.Models(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return interrupted(ctx.Err())
		}
		var le *llm.Error
		status := 0
		if errors.As(err, &le) {
			status = le.Status
		}
		switch {
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return uerr.New(uerr.ExitFailed,
				fmt.Sprintf("the LLM endpoint %s rejected the API key (HTTP %d)", base, status),
				"check --openai-api-key (OPENAI_API_KEY): it must belong to this endpoint and be active")
		case status == http.StatusNotFound:
			return uerr.New(uerr.ExitFailed,
				fmt.Sprintf("GET %s returned 404: %s is not an OpenAI-compatible base URL", url, base),
				"the base URL usually ends in /v1 (once), e.g. http://vllm:8000/v1")
		case status != 0 && status/100 != 2:
			return uerr.New(uerr.ExitPrerequisite,
				fmt.Sprintf("GET %s returned HTTP %d", url, status),
				"check that the LLM endpoint is up; --skip-checks writes the files without this check")
		case status/100 == 2:
			return uerr.Wrap(err, uerr.ExitFailed, "GET "+url+" did not return a model list",
				"the base URL must point at an OpenAI-compatible API, usually ending in /v1")
		}
		return uerr.Prerequisite(err, "cannot reach the LLM endpoint at "+base,
			"check --openai-base-url (OPENAI_BASE_URL) and the network; --skip-checks writes the files without this check")
	}
	if slices.Contains(ids, model) {
		return nil
	}
	fmt.Fprintf(warn, "Warning: model %q is not in the %d models %s lists; agents naming no model will fail if it does not exist\n", model, len(ids), base)
	return nil
}

// interrupted is the error for Ctrl-C: exit 130, nothing written.
func interrupted(cause error) error {
	if cause == nil {
		cause = context.Canceled
	}
	return uerr.Wrap(cause, uerr.ExitInterrupted, "interrupted: nothing was written", "")
}
