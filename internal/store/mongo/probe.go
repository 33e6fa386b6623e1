package mongo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// Cause kinds: one vocabulary for every caller that reaches MongoDB (the
// runtime's start-up, `mozaiks init`'s check, the doctor's MDB01).
const (
	CauseURI         = "uri"         // the URI cannot be parsed or has bad options
	CauseAuth        = "auth"        // wrong user, password, authSource or mechanism
	CauseDNS         = "dns"         // the host name does not resolve
	CauseRefused     = "refused"     // nothing listens at host:port
	CauseTLS         = "tls"         // the TLS handshake failed
	CauseUnreachable = "unreachable" // no server answered within the timeout
	CauseOther       = "other"
)

// Cause is a classified connection failure: user-safe text (never the
// driver's message, which can quote the URI and with it the password).
type Cause struct {
	Kind string
	Msg  string // what went wrong, one line
	Hint string // what to do, one line
}

// ConnectError is a failure to reach MongoDB with its classified cause; the
// driver's error stays inside for logs and errors.Is/As.
type ConnectError struct {
	URI   string // redacted
	Cause Cause
	Err   error
}

func (e *ConnectError) Error() string {
	return "mongodb " + e.URI + ": " + e.Cause.Msg + ": " + e.Err.Error()
}

func (e *ConnectError) Unwrap() error { return e.Err }

// ClassifyURI classifies err from reaching uri.
func ClassifyURI(err error, uri string) Cause {
	return classify(err, tlsRequested(uri))
}

// Classify finds the cause in err's chain: a *ConnectError's, else a fresh
// classification (assuming no TLS was asked for).
func Classify(err error) Cause {
	var ce *ConnectError
	if errors.As(err, &ce) {
		return ce.Cause
	}
	return classify(err, false)
}

// tlsRequested: the URI asks for TLS (explicitly, or by mongodb+srv's default).
func tlsRequested(uri string) bool {
	l := strings.ToLower(uri)
	if strings.Contains(l, "tls=false") || strings.Contains(l, "ssl=false") {
		return false
	}
	return strings.HasPrefix(l, "mongodb+srv://") || strings.Contains(l, "tls=true") || strings.Contains(l, "ssl=true")
}

const authHint = "check the user and password in MONGO_URI and ?authSource=admin for a root user; " +
	"special characters in the password must be percent-encoded"

func classify(err error, wantTLS bool) Cause {
	var ce mongo.CommandError
	var dnsErr *net.DNSError
	s := strings.ToLower(err.Error())
	switch {
	case wantTLS && (strings.Contains(s, "last error: eof") || strings.Contains(s, "connection reset") ||
		strings.Contains(s, "first record does not look like a tls handshake")):
		return Cause{CauseTLS, "TLS handshake failed: the server closed the connection (it does not speak TLS on that port?)",
			"match tls=true/false in MONGO_URI to the server (a local mongo container usually has no TLS)"}
	case errors.As(err, &ce) && (ce.Code == 18 || ce.Code == 13):
		return Cause{CauseAuth, "authentication failed (wrong user, password or authSource)", authHint}
	case strings.Contains(s, "auth") && (strings.Contains(s, "fail") || strings.Contains(s, "error")):
		return Cause{CauseAuth, "authentication failed (wrong user, password or authSource, or an unsupported mechanism)", authHint}
	case strings.Contains(s, "x509") || strings.Contains(s, "certificate") || strings.Contains(s, "tls:") || strings.Contains(s, "handshake"):
		return Cause{CauseTLS, "TLS handshake failed", "match tls=true/false in MONGO_URI to the server; for a private CA add tlsCAFile=/path/ca.pem"}
	case errors.As(err, &dnsErr) || strings.Contains(s, "no such host") || strings.Contains(s, "server misbehaving"):
		return Cause{CauseDNS, "the host name does not resolve",
			"check the host in MONGO_URI (inside compose it is the service name, e.g. mongo; from the host it is not resolvable)"}
	case strings.Contains(s, "connection refused"):
		return Cause{CauseRefused, "connection refused (nothing listens there)", "start MongoDB (mozaiks up) or fix the host:port in MONGO_URI"}
	case strings.Contains(s, "error parsing uri") || strings.Contains(s, "scheme must be") || strings.Contains(s, "mongodb uri"):
		return Cause{CauseURI, "the URI cannot be parsed", "use mongodb://user:pass@host:27017/MozaiksAI"}
	case strings.Contains(s, "server selection") || errors.Is(err, context.DeadlineExceeded) || strings.Contains(s, "timeout") ||
		mongo.IsTimeout(err) || mongo.IsNetworkError(err):
		return Cause{CauseUnreachable, "no server answered in time",
			"check that MongoDB runs and a firewall lets the runtime reach it (mozaiks status)"}
	default:
		return Cause{CauseOther, "the ping failed", "read MongoDB's log: mozaiks logs mongo --tail 50"}
	}
}

// clientOptions is the one connection policy: the same timeouts for the
// store, `init`'s check and the doctor, unless the URI sets its own.
func clientOptions(uri, app string, timeout time.Duration) *options.ClientOptions {
	co := options.Client().ApplyURI(uri).SetAppName(app)
	l := strings.ToLower(uri)
	if !strings.Contains(l, "serverselectiontimeoutms") {
		co.SetServerSelectionTimeout(timeout)
	}
	if !strings.Contains(l, "connecttimeoutms") {
		co.SetConnectTimeout(timeout)
	}
	return co
}

// ProbeResult is what Probe measured.
type ProbeResult struct {
	URI           string // redacted
	Database      string
	ServerVersion string // "" when buildInfo was refused
	Pings         []time.Duration
}

// Median is the median ping.
func (r ProbeResult) Median() time.Duration {
	if len(r.Pings) == 0 {
		return 0
	}
	s := slices.Clone(r.Pings)
	slices.Sort(s)
	return s[len(s)/2]
}

// ProbeOptions tune Probe; the zero value is one ping under the store's timeout.
type ProbeOptions struct {
	Pings   int
	Timeout time.Duration // server selection and connect (default DefaultServerSelectionTimeout)
	AppName string
}

// Probe connects to uri as the store would, pings it and asks its version.
// A failure is a *ConnectError with the classified cause.
func Probe(ctx context.Context, uri string, o ProbeOptions) (ProbeResult, error) {
	if o.Pings <= 0 {
		o.Pings = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultServerSelectionTimeout
	}
	res := ProbeResult{URI: RedactURI(uri), Database: DatabaseName(uri)}
	fail := func(err error) (ProbeResult, error) {
		return res, &ConnectError{URI: res.URI, Cause: ClassifyURI(err, uri), Err: err}
	}
	co := clientOptions(uri, cmp.Or(o.AppName, "mozaiks-probe"), o.Timeout)
	if err := co.Validate(); err != nil {
		return fail(fmt.Errorf("mongodb uri: %w", err))
	}
	client, err := mongo.Connect(co)
	if err != nil {
		return fail(fmt.Errorf("mongodb uri: %w", err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = client.Disconnect(cctx)
	}()
	for range o.Pings {
		t0 := time.Now()
		if err := client.Ping(ctx, readpref.Primary()); err != nil {
			return fail(err)
		}
		res.Pings = append(res.Pings, time.Since(t0))
	}
	var info bson.M
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err == nil {
		res.ServerVersion, _ = info["version"].(string)
	}
	return res, nil
}

// connectError classifies a failure of Open.
func connectError(uri string, err error) error {
	return &ConnectError{URI: RedactURI(uri), Cause: ClassifyURI(err, uri), Err: err}
}

// ProbeReport is a probe's outcome as JSON: what `mozaiks healthcheck
// --mongo` prints inside the runtime container and the doctor reads back.
type ProbeReport struct {
	OK            bool    `json:"ok"`
	URI           string  `json:"uri"` // redacted
	Database      string  `json:"database,omitempty"`
	ServerVersion string  `json:"server_version,omitempty"`
	MedianPingMS  float64 `json:"median_ping_ms,omitempty"`
	Pings         int     `json:"pings,omitempty"`
	Cause         string  `json:"cause,omitempty"` // a Cause kind
	Message       string  `json:"message,omitempty"`
	Hint          string  `json:"hint,omitempty"`
}

// Report turns Probe's result into a ProbeReport.
func Report(res ProbeResult, err error) ProbeReport {
	r := ProbeReport{OK: err == nil, URI: res.URI, Database: res.Database, ServerVersion: res.ServerVersion, Pings: len(res.Pings)}
	if err != nil {
		c := Classify(err)
		r.Cause, r.Message, r.Hint = c.Kind, c.Msg, c.Hint
		return r
	}
	r.MedianPingMS = float64(res.Median().Microseconds()) / 1000
	return r
}
