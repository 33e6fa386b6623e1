package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/store"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// APIError is an error with the status and stable code a client sees.
type APIError struct {
	Status int
	Code   string
	Msg    string
	Err    error // internal cause, logged, never sent
}

func (e *APIError) Error() string { return e.Code + ": " + e.Msg }
func (e *APIError) Unwrap() error { return e.Err }

func apiErr(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// errorBody is the one JSON error shape; detail repeats the message for
// ChatUI, which was written against FastAPI.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Detail string `json:"detail"`
}

// handlerFunc is a handler that returns its error; handle turns it into the
// error shape and logs the cause.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	if ae.Status >= 500 {
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("route", r.Pattern),
			slog.String("code", ae.Code), slog.Any("err", err))
	}
	s.metrics.errors.WithLabelValues(ae.Code).Inc()
	if ae.Status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "5")
	}
	var body errorBody
	body.Error.Code, body.Error.Message, body.Detail = ae.Code, ae.Msg, ae.Msg
	writeJSON(w, ae.Status, body)
}

// toAPIError maps store and decoding errors to their status; anything
// unknown is a 500 whose message says nothing internal.
func toAPIError(err error) *APIError {
	var ae *APIError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return &APIError{Status: http.StatusRequestEntityTooLarge, Code: "PAYLOAD_TOO_LARGE", Msg: fmt.Sprintf("request body over %d bytes", mbe.Limit), Err: err}
	case errors.Is(err, store.ErrNotFound), errors.Is(err, chat.ErrNotYours):
		return &APIError{Status: http.StatusNotFound, Code: "SESSION_NOT_FOUND", Msg: "session not found", Err: err}
	case errors.Is(err, store.ErrBadCursor):
		return &APIError{Status: http.StatusBadRequest, Code: "INVALID_CURSOR", Msg: "cursor is not one this server issued", Err: err}
	case errors.Is(err, store.ErrUnavailable):
		return &APIError{Status: http.StatusServiceUnavailable, Code: "STORE_UNAVAILABLE", Msg: "the database is unavailable; retry shortly", Err: err}
	case errors.Is(err, chat.ErrBusy):
		return &APIError{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED",
			Msg: "too many messages are waiting for this chat; this one was not stored, send it again when the answers come", Err: err}
	default:
		return &APIError{Status: http.StatusInternalServerError, Code: "INTERNAL", Msg: "internal error", Err: err}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decodeJSON reads a size-limited JSON object body into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.Is(err, io.EOF):
			return apiErr(http.StatusBadRequest, "INVALID_JSON", "request body is empty; want a JSON object")
		case errors.As(err, &te):
			return apiErr(http.StatusBadRequest, "INVALID_REQUEST", "field %q must be %s", te.Field, te.Type.String())
		default:
			return apiErr(http.StatusBadRequest, "INVALID_JSON", "request body is not valid JSON: %v", err)
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return apiErr(http.StatusBadRequest, "INVALID_JSON", "request body has data after the JSON object")
	}
	return nil
}

// checkID validates an id before any database work.
func checkID(field, v string) error {
	if !config.ValidID(v) {
		return apiErr(http.StatusBadRequest, "INVALID_ID", "%s must be 1-128 characters of A-Z a-z 0-9 . _ : @ -", field)
	}
	return nil
}

func queryInt(r *http.Request, name string, def, min, max int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "%s must be an integer from %d to %d", name, min, max)
	}
	return n, nil
}
