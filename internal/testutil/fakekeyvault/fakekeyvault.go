// Package fakekeyvault is a local HTTPS server that speaks enough of Azure
// to test a Key Vault client end to end: the Microsoft identity platform's
// instance discovery, OpenID configuration and client-credentials token
// endpoint, and Key Vault's secrets API with its challenge-based auth (a
// request without a token gets 401 and a WWW-Authenticate challenge naming
// the authority and resource). It answers for login.microsoftonline.com and
// *.vault.azure.net: Client returns an HTTP client that dials the server for
// every host and trusts its certificate, so the code under test uses the
// real vault URLs and authority.
package fakekeyvault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Authority is the identity host the server answers for.
const Authority = "login.microsoftonline.com"

// Server is the fake.
type Server struct {
	Tenant       string
	ClientID     string
	ClientSecret string

	srv      *httptest.Server
	pool     *x509.CertPool
	mu       sync.Mutex
	secrets  map[string]map[string]string // vault name -> secret -> value
	tokens   map[string]bool
	nextTok  atomic.Int64
	Requests atomic.Int64 // secrets requests that carried a valid token
	Tokens   atomic.Int64 // tokens issued
}

// New starts a server for t with the given client-secret credentials.
func New(t testing.TB, tenant, clientID, clientSecret string) *Server {
	t.Helper()
	s := &Server{Tenant: tenant, ClientID: clientID, ClientSecret: clientSecret,
		secrets: map[string]map[string]string{}, tokens: map[string]bool{}}
	cert, pool, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	s.pool = pool
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

// SetSecret stores a secret in the named vault.
func (s *Server) SetSecret(vault, name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secrets[vault] == nil {
		s.secrets[vault] = map[string]string{}
	}
	s.secrets[vault][name] = value
}

// Close stops the server (a vault that is down).
func (s *Server) Close() { s.srv.Close() }

// Client is an HTTP client that reaches this server whatever host a URL
// names, and trusts its certificate.
func (s *Server) Client() *http.Client {
	addr := s.srv.Listener.Addr().String()
	d := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: s.pool},
	}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	host, _, _ := strings.Cut(r.Host, ":")
	if host == Authority {
		s.identity(w, r)
		return
	}
	vault, ok := strings.CutSuffix(host, ".vault.azure.net")
	if !ok {
		http.Error(w, "unknown host "+host, http.StatusMisdirectedRequest)
		return
	}
	s.vault(w, r, vault)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) identity(w http.ResponseWriter, r *http.Request) {
	base := "https://" + Authority + "/" + s.Tenant
	switch {
	case r.URL.Path == "/common/discovery/instance":
		writeJSON(w, 200, map[string]any{
			"tenant_discovery_endpoint": base + "/v2.0/.well-known/openid-configuration",
			"api-version":               "1.1",
			"metadata": []map[string]any{{"preferred_network": Authority, "preferred_cache": "login.windows.net",
				"aliases": []string{Authority, "login.windows.net", "login.microsoft.com", "sts.windows.net"}}},
		})
	case r.URL.Path == "/"+s.Tenant+"/v2.0/.well-known/openid-configuration":
		writeJSON(w, 200, map[string]any{
			"token_endpoint":                base + "/oauth2/v2.0/token",
			"authorization_endpoint":        base + "/oauth2/v2.0/authorize",
			"device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
			"issuer":                        base + "/v2.0",
		})
	case r.URL.Path == "/"+s.Tenant+"/oauth2/v2.0/token" && r.Method == http.MethodPost:
		_ = r.ParseForm()
		if r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_id") != s.ClientID ||
			r.PostForm.Get("client_secret") != s.ClientSecret {
			writeJSON(w, 401, map[string]any{"error": "invalid_client",
				"error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": []int{7000215}})
			return
		}
		if !slices.Contains(strings.Fields(r.PostForm.Get("scope")), "https://vault.azure.net/.default") {
			writeJSON(w, 400, map[string]any{"error": "invalid_scope", "error_description": "AADSTS70011: bad scope " + r.PostForm.Get("scope")})
			return
		}
		tok := fmt.Sprintf("tok-%d", s.nextTok.Add(1))
		s.mu.Lock()
		s.tokens[tok] = true
		s.mu.Unlock()
		s.Tokens.Add(1)
		writeJSON(w, 200, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
	default:
		writeJSON(w, 404, map[string]any{"error": "not_found", "error_description": "no " + r.URL.Path})
	}
}

func (s *Server) vault(w http.ResponseWriter, r *http.Request, vault string) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	valid := ok && s.tokens[tok]
	s.mu.Unlock()
	if !valid {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="https://%s/%s", resource="https://vault.azure.net"`,
			Authority, s.Tenant))
		writeJSON(w, 401, map[string]any{"error": map[string]any{"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}})
		return
	}
	s.Requests.Add(1)
	name, ok := strings.CutPrefix(strings.TrimSuffix(r.URL.Path, "/"), "/secrets/")
	if !ok || r.Method != http.MethodGet || strings.Contains(name, "/") {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"code": "BadParameter", "message": "unsupported " + r.URL.Path}})
		return
	}
	s.mu.Lock()
	v, found := s.secrets[vault][name]
	s.mu.Unlock()
	if !found {
		writeJSON(w, 404, map[string]any{"error": map[string]any{"code": "SecretNotFound",
			"message": fmt.Sprintf("A secret with (name/id) %s was not found in this key vault.", name)}})
		return
	}
	writeJSON(w, 200, map[string]any{"value": v, "id": fmt.Sprintf("https://%s.vault.azure.net/secrets/%s/0123456789abcdef", vault, name),
		"attributes": map[string]any{"enabled": true}})
}

// selfSigned makes a CA-signed-by-itself certificate for the hosts served.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fake azure"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              []string{Authority, "*.vault.azure.net"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// CAFile writes the server's certificate (its own CA) as PEM into a file for
// t and returns the path: a process started with SSL_CERT_FILE set to it
// trusts the server.
func (s *Server) CAFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-azure-ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.TLS.Certificates[0].Certificate[0]})
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ConnectProxy starts an HTTP CONNECT proxy for t that tunnels every
// connection to the server, and returns its URL: a process started with
// HTTPS_PROXY set to it reaches the fake for login.microsoftonline.com and
// *.vault.azure.net (Go's HTTP clients, the Azure SDK's included, honour it).
func (s *Server) ConnectProxy(t testing.TB) string {
	t.Helper()
	addr := s.srv.Listener.Addr().String()
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			up.Close()
			http.Error(w, "no hijack", http.StatusInternalServerError)
			return
		}
		conn, rw, err := hj.Hijack()
		if err != nil {
			up.Close()
			return
		}
		_, _ = rw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
		_ = rw.Flush()
		go func() {
			defer up.Close()
			defer conn.Close()
			_, _ = io.Copy(up, rw)
		}()
		_, _ = io.Copy(conn, up)
		conn.Close()
	}))
	t.Cleanup(p.Close)
	return p.URL
}
