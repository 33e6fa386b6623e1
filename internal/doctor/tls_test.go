package doctor

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/doctor/doctortest"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func issue(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, pub any, signer *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	sn, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = sn
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newCA(t *testing.T, name string, parent *testCA) *testCA {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	if parent == nil {
		return &testCA{cert: issue(t, tmpl, tmpl, &k.PublicKey, k), key: k}
	}
	return &testCA{cert: issue(t, tmpl, parent.cert, &k.PublicKey, parent.key), key: k}
}

// leaf issues a server certificate for 127.0.0.1 / names, valid until notAfter.
func (ca *testCA) leaf(t *testing.T, names []string, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	}
	if ca == nil { // self-signed
		return issue(t, tmpl, tmpl, &k.PublicKey, k), k
	}
	return issue(t, tmpl, ca.cert, &k.PublicKey, ca.key), k
}

// tlsServer serves h with the given chain; returns its https URL with host.
func tlsServer(t *testing.T, h http.Handler, host string, chain []*x509.Certificate, key *ecdsa.PrivateKey) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	cert := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return "https://" + host + ":" + u.Port()
}

func TestTLS(t *testing.T) {
	t.Parallel()
	root := newCA(t, "Doctor Test Root", nil)
	inter := newCA(t, "Doctor Test Intermediate", root)
	pool := x509.NewCertPool()
	pool.AddCert(root.cert)
	ok200 := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	in := func(d time.Duration) time.Time { return time.Now().Add(d) }
	const day = 24 * time.Hour

	type tc struct {
		name      string
		host      string // URL host (localhost resolves to 127.0.0.1)
		chain     func() ([]*x509.Certificate, *ecdsa.PrivateKey)
		sev       Severity
		msg, hint string
	}
	tests := []tc{
		{"valid full chain", "localhost", func() ([]*x509.Certificate, *ecdsa.PrivateKey) {
			l, k := inter.leaf(t, []string{"localhost"}, in(90*day))
			return []*x509.Certificate{l, inter.cert}, k
		}, OK, "valid for localhost", ""},
		{"self-signed", "localhost", func() ([]*x509.Certificate, *ecdsa.PrivateKey) {
			l, k := (*testCA)(nil).leaf(t, []string{"localhost"}, in(90*day))
			return []*x509.Certificate{l}, k
		}, Fail, "self-signed", "public CA"},
		{"expired", "localhost", func() ([]*x509.Certificate, *ecdsa.PrivateKey) {
			l, k := inter.leaf(t, []string{"localhost"}, in(-day))
			return []*x509.Certificate{l, inter.cert}, k
		}, Fail, "expired on", "renew"},
		{"wrong host", "localhost", func() ([]*x509.Certificate, *ecdsa.PrivateKey) {
			l, k := inter.leaf(t, []string{"other.example.com"}, in(90*day))
			return []*x509.Certificate{l, inter.cert}, k
		}, Fail, "certificate is for other.example.com, not localhost", "names localhost"},
		{"expires in 5 days", "localhost", func() ([]*x509.Certificate, *ecdsa.PrivateKey) {
			l, k := inter.leaf(t, []string{"localhost"}, in(5*day+time.Hour))
			return []*x509.Certificate{l, inter.cert}, k
		}, Fail, "expires in 5 day(s)", "renew it now"},
		{"expires in 10 days", "localhost", func() ([]*x509.Certificate, *ecdsa.PrivateKey) {
			l, k := inter.leaf(t, []string{"localhost"}, in(10*day+time.Hour))
			return []*x509.Certificate{l, inter.cert}, k
		}, Warn, "expires in 10 days", "renewal"},
		{"incomplete chain", "localhost", func() ([]*x509.Certificate, *ecdsa.PrivateKey) {
			l, k := inter.leaf(t, []string{"localhost"}, in(90*day))
			return []*x509.Certificate{l}, k
		}, Fail, "incomplete chain", "fullchain.pem"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			chain, key := tc.chain()
			u := tlsServer(t, ok200, tc.host, chain, key)
			env := testEnv(t, map[string]string{"_URL": u}, "")
			env.RootCAs = pool
			wantResult(t, runCheck(t, env, checkTLS()), tc.sev, tc.msg, tc.hint)
		})
	}
	env := testEnv(t, map[string]string{"_URL": "http://127.0.0.1:1"}, "")
	wantResult(t, runCheck(t, env, checkTLS()), Skipped, "not https", "")
}

// TestWSSchemeProxyDropsProto: a TLS-terminating proxy that does not forward
// X-Forwarded-Proto leaves the runtime thinking it is served over http.
func TestWSSchemeProxyDropsProto(t *testing.T) {
	t.Parallel()
	root := newCA(t, "Doctor Test Root", nil)
	pool := x509.NewCertPool()
	pool.AddCert(root.cert)
	rt := doctortest.StartRuntime(t, doctortest.RuntimeOptions{Origins: []string{"https://localhost"}})
	up, _ := url.Parse(rt.URL)
	for _, forward := range []bool{false, true} {
		proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(up)
			if forward {
				r.SetXForwarded()
			}
		}}
		l, k := root.leaf(t, []string{"localhost"}, time.Now().Add(90*24*time.Hour))
		u := tlsServer(t, proxy, "localhost", []*x509.Certificate{l, root.cert}, k)
		env := testEnv(t, map[string]string{"_URL": u, "CORS_ORIGINS": "https://localhost"}, "")
		env.RootCAs = pool
		r := runCheck(t, env, checkWSScheme())
		if forward {
			wantResult(t, r, OK, "public https, sockets wss://, the runtime sees https", "")
		} else {
			wantResult(t, r, Fail, "the runtime sees http", "X-Forwarded-Proto $scheme")
		}
	}
	// An https page cannot open ws:// to an http runtime URL.
	env := testEnv(t, map[string]string{"_URL": rt.URL, "_ORIGIN": "https://app.example.com"}, "")
	wantResult(t, runCheck(t, env, checkWSScheme()), Fail, "mixed content", "wss://")
	if !strings.HasPrefix(rt.URL, "http://") {
		t.Fatal("runtime should be plain http here")
	}
}

// TestTLSPrivateCA: a certificate from a private CA fails without --ca-file
// (with a hint naming it, not only "use a public CA") and passes with it;
// nothing but the CA file differs between the two runs.
func TestTLSPrivateCA(t *testing.T) {
	t.Parallel()
	root := newCA(t, "Acme Private Root", nil)
	leaf, key := root.leaf(t, []string{"localhost"}, time.Now().Add(90*24*time.Hour))
	u := tlsServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), "localhost", []*x509.Certificate{leaf, root.cert}, key)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		caFile    string
		sev       Severity
		msg, hint string
	}{
		{"", Fail, "does not lead to a trusted root", "--ca-file"},
		{caFile, OK, "valid for localhost", ""},
	} {
		env, err := NewEnv(EnvOptions{Load: config.LoadOptions{Dir: t.TempDir(), Environ: []string{}}, URL: u, CAFile: tc.caFile})
		if err != nil {
			t.Fatal(err)
		}
		wantResult(t, runCheck(t, env, checkTLS()), tc.sev, tc.msg, tc.hint)
	}
	if _, err := NewEnv(EnvOptions{Load: config.LoadOptions{Dir: t.TempDir(), Environ: []string{}}, CAFile: "/nonexistent/ca.pem"}); err == nil {
		t.Fatal("a missing --ca-file was accepted")
	}
}
