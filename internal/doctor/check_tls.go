package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// TLS01 thresholds: a certificate expiring within warnDays warns, within
// failDays fails (renewal is overdue; ACME renews 30 days ahead).
const (
	tlsWarnDays = 14
	tlsFailDays = 7
)

func checkTLS() Check {
	return Check{Code: "TLS01", Name: "TLS certificate", Needs: []string{"CFG01"}, Timeout: 10 * time.Second, Run: runTLS}
}

func runTLS(ctx context.Context, env *Env) Result {
	u, err := env.targetURL()
	if err != nil || u.Scheme != "https" {
		return skip("the public URL is not https (" + env.URL + ")")
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "443"
	}
	d := &tls.Dialer{Config: &tls.Config{ServerName: host, InsecureSkipVerify: true}} // verified below, to classify
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fail("TLS handshake with "+u.Host+" failed: "+netCause(err), "check that the proxy listens with TLS on "+port, nil)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return fail("the server sent no certificate", "configure the proxy's certificate", nil)
	}
	leaf := certs[0]
	now := env.now()
	left := leaf.NotAfter.Sub(now)
	det := map[string]any{
		"subject": leaf.Subject.CommonName, "issuer": leaf.Issuer.CommonName, "dns_names": leaf.DNSNames,
		"not_after": leaf.NotAfter.UTC().Format(time.RFC3339), "days_left": int(left.Hours() / 24), "chain_length": len(certs),
	}
	if now.After(leaf.NotAfter) {
		return fail(fmt.Sprintf("certificate expired on %s", leaf.NotAfter.UTC().Format("2006-01-02")), "renew it (Caddy renews by itself; certbot renew for nginx) and reload the proxy", det)
	}
	if now.Before(leaf.NotBefore) {
		return fail("certificate not valid yet (valid from "+leaf.NotBefore.UTC().Format(time.RFC3339)+")", "check the server's clock", det)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, verr := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: env.RootCAs, Intermediates: inter, CurrentTime: now})
	var hostErr x509.HostnameError
	var uaErr x509.UnknownAuthorityError
	switch {
	case verr == nil:
	case errors.As(verr, &hostErr):
		return fail(fmt.Sprintf("certificate is for %s, not %s", certNames(leaf), host), "issue a certificate that names "+host+" (or use the URL the certificate names)", det)
	case errors.As(verr, &uaErr) && selfSigned(leaf):
		return fail("certificate is self-signed: browsers refuse it", "use a certificate from a public CA (Caddy gets one automatically; certbot for nginx); if your clients trust it as a private CA, run mozaiks doctor --ca-file ca.pem", det)
	case errors.As(verr, &uaErr) && len(certs) == 1:
		return fail("incomplete chain: the server sends only its own certificate, without the intermediate(s) of "+leaf.Issuer.CommonName,
			"serve the full chain (nginx ssl_certificate fullchain.pem, not cert.pem); for a private CA, pass its certificate: mozaiks doctor --ca-file ca.pem", det)
	case errors.As(verr, &uaErr):
		return fail("certificate chain does not lead to a trusted root (issuer "+leaf.Issuer.CommonName+")", "if "+leaf.Issuer.CommonName+" is your private CA, run mozaiks doctor --ca-file ca.pem; otherwise serve the full chain from a public CA (nginx ssl_certificate fullchain.pem)", det)
	default:
		return fail("certificate does not verify: "+truncate(verr.Error(), 120), "serve a valid certificate with its full chain", det)
	}
	days := int(left.Hours() / 24)
	switch {
	case left < tlsFailDays*24*time.Hour:
		return fail(fmt.Sprintf("certificate expires in %d day(s) (%s)", days, leaf.NotAfter.UTC().Format("2006-01-02")), "renew it now and reload the proxy; check that automatic renewal runs", det)
	case left < tlsWarnDays*24*time.Hour:
		return warn(fmt.Sprintf("certificate expires in %d days", days), "renewal should have happened by now: check certbot/Caddy renewal", det)
	}
	return ok(fmt.Sprintf("valid for %s, %d days left, chain of %d", host, days, len(certs)), det)
}

func selfSigned(c *x509.Certificate) bool {
	return c.Subject.String() == c.Issuer.String() && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

func certNames(c *x509.Certificate) string {
	if len(c.DNSNames) > 0 {
		return strings.Join(c.DNSNames, ", ")
	}
	return c.Subject.CommonName
}
