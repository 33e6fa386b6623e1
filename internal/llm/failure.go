package llm

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	openai "github.com/sashabaranov/go-openai"
)

// failure is a failed call sorted into retry or reject, with a message safe
// to show a user.
type failure struct {
	retryable  bool
	status     int
	retryAfter time.Duration
	msg        string
	cause      error // redacted
}

// clientSideErrors are go-openai's own refusals of a request before any I/O;
// retrying them cannot help.
var clientSideErrors = []error{
	openai.ErrChatCompletionInvalidModel,
	openai.ErrContentFieldsMisused,
	openai.ErrReasoningModelMaxTokensDeprecated,
	openai.ErrReasoningModelLimitationsLogprobs,
	openai.ErrReasoningModelLimitationsOther,
	openai.ErrReasoningEffortUnsupported,
	openai.ErrReasoningToolsRequireResponses,
	openai.ErrReasoningSamplingUnsupported,
}

func (c *openAIClient) classify(err error, model string) failure {
	f := failure{cause: c.redactErr(err)}
	var ae *attemptError
	if errors.As(err, &ae) {
		f.status, f.retryAfter = ae.info.status, ae.info.retryAfter
	}
	var (
		apiErr     *openai.APIError
		reqErr     *openai.RequestError
		apiMessage string
		apiCode    string
	)
	switch {
	case errors.As(err, &apiErr):
		apiMessage = apiErr.Message
		apiCode, _ = apiErr.Code.(string)
		if apiErr.HTTPStatusCode != 0 {
			f.status = apiErr.HTTPStatusCode
		} else if f.status < 300 {
			// An error event inside a 200 stream: the upstream failed
			// mid-reply.
			f.retryable = true
			f.msg = "the stream reported an error: " + c.redact(truncate(apiMessage, 200))
			return f
		}
	case errors.As(err, &reqErr):
		f.status = reqErr.HTTPStatusCode
	}

	switch {
	case errors.Is(err, errFirstByteTimeout):
		f.retryable, f.msg = true, fmt.Sprintf("no response within %s", c.opts.FirstByteTimeout)
	case errors.Is(err, errIdleTimeout):
		f.retryable, f.msg = true, fmt.Sprintf("the reply stalled for %s", c.opts.IdleTimeout)
	case errors.Is(err, errCallTimeout):
		f.retryable, f.msg = true, fmt.Sprintf("no complete reply within %s", c.opts.Timeout)
	case errors.Is(err, errBrokenStream) || errors.Is(err, io.ErrUnexpectedEOF):
		f.retryable, f.msg = true, "the stream broke off"
	case f.status == http.StatusTooManyRequests && apiCode == "insufficient_quota":
		f.msg = "the LLM account has no quota left (429 insufficient_quota): check its plan and billing"
	case f.status == http.StatusTooManyRequests:
		f.retryable, f.msg = true, "rate limited (429)"
	case f.status == http.StatusRequestTimeout || f.status == http.StatusConflict || f.status >= 500:
		f.retryable, f.msg = true, fmt.Sprintf("server error (%d)", f.status)
	case f.status == http.StatusUnauthorized:
		f.msg = "the LLM endpoint rejected the API key (401)"
	case f.status == http.StatusForbidden:
		f.msg = "the LLM endpoint refused access (403): the key may lack permission for this model or endpoint"
	case f.status == http.StatusNotFound && model != "":
		f.msg = fmt.Sprintf("the LLM endpoint answered 404 for model %q: the model does not exist there, or the base URL is wrong (it usually ends in /v1)", model)
	case f.status == http.StatusNotFound:
		f.msg = "the LLM endpoint answered 404: check the base URL (it usually ends in /v1, exactly once)"
	case f.status >= 400:
		f.msg = fmt.Sprintf("the LLM endpoint rejected the request (%d)", f.status)
		if apiMessage != "" {
			f.msg += ": " + c.redact(truncate(apiMessage, 300))
		}
	case f.status >= 300:
		f.msg = fmt.Sprintf("the LLM endpoint answered with a redirect (%d): check the base URL", f.status)
	case isClientSide(err):
		f.msg = fmt.Sprintf("the request is not valid for model %q: %v", model, err)
	default:
		// Connection refused or reset, DNS, TLS, a body cut short: all
		// transient as far as we can tell.
		f.retryable, f.msg = true, "could not reach the LLM endpoint or read its reply"
	}
	return f
}

func isClientSide(err error) bool {
	for _, e := range clientSideErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// keyLike matches OpenAI-style keys, including the partly masked form
// OpenAI echoes in its 401 message ("sk-abc123********wxyz").
var keyLike = regexp.MustCompile(`\b(sk|rk|pk)-[A-Za-z0-9_*\-]{3,}`)

// redact removes the configured key and anything shaped like a key.
func (c *openAIClient) redact(s string) string {
	if k := c.opts.APIKey; len(k) >= 4 {
		s = strings.ReplaceAll(s, k, "[redacted]")
	}
	return keyLike.ReplaceAllString(s, "[redacted]")
}

// redactErr keeps err (and its chain) when its text is clean, and replaces it
// by its redacted text otherwise.
func (c *openAIClient) redactErr(err error) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	if r := c.redact(s); r != s {
		return errors.New(r)
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// parseRetryAfter reads how long the server asks us to wait: Retry-After in
// seconds or as an HTTP date, or OpenAI's retry-after-ms.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
