package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const defaultOpenAIBase = "https://api.openai.com/v1"

func checkLLM() Check {
	return Check{Code: "LLM01", Name: "LLM endpoint and model", Needs: []string{"CFG01"}, Timeout: 15 * time.Second, Run: runLLM}
}

// modelsAnswer is one GET {base}/models.
type modelsAnswer struct {
	status int
	models []string
	errMsg string // the provider's error.message, if any (never contains the key)
}

// The probe is a direct GET rather than llm.Client.Models: telling a 404
// from a missing /v1 apart from a 401 needs the raw status.
func getModels(ctx context.Context, env *Env, base, key string) (modelsAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/models", nil)
	if err != nil {
		return modelsAnswer{}, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := env.httpClient(10 * time.Second).Do(req)
	if err != nil {
		return modelsAnswer{}, err
	}
	defer resp.Body.Close()
	var body struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
		Error json.RawMessage `json:"error"`
	}
	a := modelsAnswer{status: resp.StatusCode}
	if json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 4<<20)).Decode(&body) == nil {
		for _, m := range body.Data {
			a.models = append(a.models, m.ID)
		}
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body.Error, &e) == nil {
			a.errMsg = e.Message
		} else {
			var s string
			if json.Unmarshal(body.Error, &s) == nil {
				a.errMsg = s
			}
		}
	}
	return a, nil
}

func isLocalHost(h string) bool {
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func runLLM(ctx context.Context, env *Env) Result {
	c := env.Config
	if c.LLMProvider == "echo" {
		return skip("LLM_PROVIDER=echo: the offline stand-in needs no model endpoint")
	}
	base := c.OpenAIBaseURL
	if base == "" {
		base = defaultOpenAIBase
	}
	d := map[string]any{"base_url": base, "model": c.DefaultLLMModel, "key_set": c.OpenAIAPIKey != ""}
	u, err := url.Parse(base)
	if err != nil {
		return fail("OPENAI_BASE_URL is not a URL", "e.g. OPENAI_BASE_URL=https://api.openai.com/v1", d)
	}
	if c.OpenAIAPIKey == "" && base == defaultOpenAIBase {
		return fail("OPENAI_API_KEY is not set", "set OPENAI_API_KEY in .env (or OPENAI_BASE_URL for a local endpoint, or LLM_PROVIDER=echo for a demo)", d)
	}
	// Loopback is wrong only where the runtime itself runs in a container
	// (compose, Kubernetes); where the doctor runs does not matter.
	if runtimeInContainer(env) && isLocalHost(u.Hostname()) {
		return fail("OPENAI_BASE_URL points at "+u.Hostname()+", which inside a container is the container itself",
			"use the host's address: OPENAI_BASE_URL="+strings.Replace(base, u.Hostname(), "host.docker.internal", 1)+" (with extra_hosts: host.docker.internal:host-gateway), or the compose service name", d)
	}
	a, err := getModels(ctx, env, base, c.OpenAIAPIKey)
	if err != nil {
		return fail("cannot reach "+base+": "+netCause(err), "check OPENAI_BASE_URL and that the endpoint is up", d)
	}
	d["status"] = a.status
	if a.errMsg != "" {
		d["provider_error"] = truncate(a.errMsg, 200)
	}
	switch {
	case a.status == http.StatusUnauthorized || a.status == http.StatusForbidden:
		return fail(fmt.Sprintf("the endpoint rejected the API key (%d)", a.status), "set a valid OPENAI_API_KEY in .env (a revoked, mistyped or other-provider key?)", d)
	case a.status == http.StatusNotFound:
		path := strings.TrimRight(u.Path, "/")
		if strings.Contains(path, "/v1/v1") {
			fixed := strings.Replace(base, "/v1/v1", "/v1", 1)
			return fail("404: /v1 appears twice in the base URL", "set OPENAI_BASE_URL="+fixed, d)
		}
		if !strings.HasSuffix(path, "/v1") {
			if b, err := getModels(ctx, env, base+"/v1", c.OpenAIAPIKey); err == nil && b.status == http.StatusOK {
				return fail("404: the base URL lacks /v1", "set OPENAI_BASE_URL="+base+"/v1", d)
			}
			return fail("404 from "+base+"/models (the base URL usually ends in /v1)", "set OPENAI_BASE_URL to the endpoint's OpenAI-compatible root, e.g. "+base+"/v1", d)
		}
		return fail("404 from "+base+"/models: not an OpenAI-compatible endpoint", "check OPENAI_BASE_URL against the provider's docs", d)
	case a.status == http.StatusTooManyRequests:
		return warn("rate limited or out of quota (429)", "check the account's quota and billing", d)
	case a.status >= 500:
		return fail(fmt.Sprintf("the endpoint failed (%d)", a.status), "the provider is down or overloaded; retry later", d)
	case a.status != http.StatusOK:
		return fail(fmt.Sprintf("unexpected answer %d from %s/models", a.status, base), "check OPENAI_BASE_URL", d)
	}
	d["models_listed"] = len(a.models)
	if !slices.Contains(a.models, c.DefaultLLMModel) {
		some := a.models
		if len(some) > 8 {
			some = some[:8]
		}
		d["available"] = some
		hint := "set DEFAULT_LLM_MODEL to a model the endpoint serves"
		if len(some) > 0 {
			hint += ", e.g. DEFAULT_LLM_MODEL=" + some[0]
		}
		return fail(fmt.Sprintf("model %q is not served by %s (%d models listed)", c.DefaultLLMModel, base, len(a.models)), hint, d)
	}
	return ok(fmt.Sprintf("key accepted, model %s listed (%d models)", c.DefaultLLMModel, len(a.models)), d)
}

// runtimeInContainer: the deployment runs the runtime in a container.
func runtimeInContainer(env *Env) bool {
	k := env.DeploymentKind()
	return k == KindComposeDev || k == KindComposeProd || k == KindK8s
}
