package initwiz

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mozaiks/mozaiks/internal/config"
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

// checkLLM lists the endpoint's models with the key: the one request that
// proves both the base URL and the key. An unlisted model only warns, since
// some compatible servers list a subset.
func checkLLM(ctx context.Context, client *http.Client, base, key, model string, warn io.Writer) error {
	if base == "" {
		base = defaultOpenAIBase
	}
	url := strings.TrimRight(base, "/") + "/models"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return uerr.Wrap(err, uerr.ExitUsage, "the LLM base URL "+base+" is not valid", "fix --openai-base-url (OPENAI_BASE_URL)")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return interrupted(ctx.Err())
		}
		return uerr.Prerequisite(err, "cannot reach the LLM endpoint at "+base,
			"check --openai-base-url (OPENAI_BASE_URL) and the network; --skip-checks writes the files without this check")
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return uerr.New(uerr.ExitFailed,
			fmt.Sprintf("the LLM endpoint %s rejected the API key (HTTP %d)", base, resp.StatusCode),
			"check --openai-api-key (OPENAI_API_KEY): it must belong to this endpoint and be active")
	case resp.StatusCode == http.StatusNotFound:
		return uerr.New(uerr.ExitFailed,
			fmt.Sprintf("GET %s returned 404: %s is not an OpenAI-compatible base URL", url, base),
			"the base URL usually ends in /v1 (once), e.g. http://vllm:8000/v1")
	case resp.StatusCode/100 != 2:
		return uerr.New(uerr.ExitPrerequisite,
			fmt.Sprintf("GET %s returned HTTP %d", url, resp.StatusCode),
			"check that the LLM endpoint is up; --skip-checks writes the files without this check")
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return uerr.Wrap(err, uerr.ExitFailed, "GET "+url+" did not return a model list",
			"the base URL must point at an OpenAI-compatible API, usually ending in /v1")
	}
	for _, m := range list.Data {
		if m.ID == model {
			return nil
		}
	}
	fmt.Fprintf(warn, "Warning: model %q is not in the %d models %s lists; agents naming no model will fail if it does not exist\n", model, len(list.Data), base)
	return nil
}

// interrupted is the error for Ctrl-C: exit 130, nothing written.
func interrupted(cause error) error {
	if cause == nil {
		cause = context.Canceled
	}
	return uerr.Wrap(cause, uerr.ExitInterrupted, "interrupted: nothing was written", "")
}
