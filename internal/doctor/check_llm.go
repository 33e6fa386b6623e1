package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm"
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

// getModels lists the endpoint's models through internal/llm, the client
// the runtime itself uses (one attempt, no retries); its typed error keeps
// the HTTP status, which tells a missing /v1 (404) from a bad key (401).
func getModels(ctx context.Context, env *Env, base, key string) (modelsAnswer, error) {
	if rt, inCompose, err := env.composeServiceTarget(ctx, base); inCompose {
		if err != nil {
			return modelsAnswer{}, err
		}
		return execModels(ctx, env, rt, base)
	}
	c := llm.NewOpenAI(llm.Options{APIKey: key, BaseURL: base, HTTPClient: env.httpClient(10 * time.Second),
		MaxRetries: -1, Timeout: 10 * time.Second})
	ids, err := c.Models(ctx)
	if err == nil {
		return modelsAnswer{status: http.StatusOK, models: ids}, nil
	}
	var le *llm.Error
	if errors.As(err, &le) && le.Status != 0 {
		return modelsAnswer{status: le.Status, errMsg: strings.TrimPrefix(le.Msg, "list models: ")}, nil
	}
	return modelsAnswer{}, err
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
	if errors.Is(err, errRuntimeNotRunning) {
		return skip(u.Hostname() + " is a compose service, reachable only from inside the runtime container, which is not running (see DKR02)")
	}
	if err != nil {
		cause := unreachableCause(ctx, env, base, err)
		hint := "check OPENAI_BASE_URL and that the endpoint is up"
		if strings.Contains(cause, "; container ") || strings.Contains(cause, "has no container") {
			hint = "start it: " + env.upCommand() + "; its last log lines: mozaiks logs " + u.Hostname() + " --tail 50"
		}
		return fail("cannot reach "+base+": "+cause, hint, d)
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

// errRuntimeNotRunning: a probe that must run inside the runtime container
// cannot, because the container does not run.
var errRuntimeNotRunning = errors.New("the runtime container is not running")

// composeServiceTarget: in a compose deployment, a base URL whose host is a
// compose service resolves only inside the compose network, so the probe
// must run in the runtime container. It returns that container's id.
func (e *Env) composeServiceTarget(ctx context.Context, base string) (string, bool, error) {
	if !e.IsCompose() {
		return "", false, nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", false, nil
	}
	cf, err := e.Compose()
	if err != nil || cf == nil {
		return "", false, nil
	}
	if _, isService := cf.Services[u.Hostname()]; !isService {
		return "", false, nil
	}
	api, err := e.docker()
	if err != nil {
		return "", true, errRuntimeNotRunning
	}
	list, err := api.ProjectContainers(ctx, cf.Project)
	if err != nil {
		return "", true, errRuntimeNotRunning
	}
	for _, c := range list {
		if c.Service == runtimeService && c.State == "running" {
			return c.ID, true, nil
		}
	}
	return "", true, errRuntimeNotRunning
}

// execModels runs `mozaiks healthcheck --llm` in the runtime container.
func execModels(ctx context.Context, env *Env, id, base string) (modelsAnswer, error) {
	api, err := env.docker()
	if err != nil {
		return modelsAnswer{}, err
	}
	res, err := api.Exec(ctx, id, []string{"/mozaiks", "healthcheck", "--llm", "--llm-base-url", base})
	if err != nil {
		return modelsAnswer{}, err
	}
	var rep struct {
		Status int      `json:"status"`
		Models []string `json:"models"`
		Error  string   `json:"error"`
	}
	if json.Unmarshal([]byte(strings.TrimSpace(res.Stdout)), &rep) != nil {
		return modelsAnswer{}, errors.New("the runtime image has no `healthcheck --llm` (upgrade it)")
	}
	if rep.Status == 0 {
		return modelsAnswer{}, &execProbeError{msg: rep.Error}
	}
	return modelsAnswer{status: rep.Status, models: rep.Models, errMsg: rep.Error}, nil
}

// execProbeError is a probe that ran in the runtime container and got no
// answer; msg is internal/llm's user-safe reason.
type execProbeError struct{ msg string }

func (e *execProbeError) Error() string { return e.msg }

// unreachableCause names why base did not answer: the probe's own reason,
// and the state of the compose service it names when that is the cause.
func unreachableCause(ctx context.Context, env *Env, base string, err error) string {
	cause := netCause(err)
	var pe *execProbeError
	if errors.As(err, &pe) && pe.msg != "" {
		cause = strings.TrimPrefix(pe.msg, "list models: ")
	}
	u, perr := url.Parse(base)
	cf, cerr := env.Compose()
	if perr != nil || cerr != nil || cf == nil {
		return cause
	}
	api, derr := env.docker()
	if derr != nil {
		return cause
	}
	list, lerr := api.ProjectContainers(ctx, cf.Project)
	if lerr != nil {
		return cause
	}
	byService := map[string]ContainerInfo{}
	for _, c := range list {
		byService[c.Service] = c
	}
	if st := serviceState(u.Hostname(), byService, cf); st != "" {
		cause += "; " + st
	}
	return cause
}
