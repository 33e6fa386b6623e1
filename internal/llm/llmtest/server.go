package llmtest

import (
	"net/http/httptest"
	"testing"
)

// Server is the fake listening on 127.0.0.1 for one test.
type Server struct {
	*Handler
	srv *httptest.Server
}

// New starts a fake on 127.0.0.1:0, closed when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	h := NewHandler(opts...)
	srv := httptest.NewUnstartedServer(h)
	srv.Start()
	t.Cleanup(srv.Close)
	return &Server{Handler: h, srv: srv}
}

// URL is the base URL clients are configured with, including "/v1".
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// CloseClientConnections drops every open connection, e.g. to test how a
// client reacts to its upstream vanishing.
func (s *Server) CloseClientConnections() { s.srv.CloseClientConnections() }
