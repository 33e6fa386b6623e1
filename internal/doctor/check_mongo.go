package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mozaiks/mozaiks/internal/config"
)

const (
	mongoPings    = 3
	mongoSlowPing = 100 * time.Millisecond
)

func checkMongo() Check {
	return Check{Code: "MDB01", Name: "MongoDB", Needs: []string{"CFG01"}, Timeout: 15 * time.Second, Run: runMongo}
}

func runMongo(ctx context.Context, env *Env) Result {
	if env.Config.MongoURI == "" {
		return skip("MONGO_URI is not set: the runtime uses the embedded store in " + env.Config.DataDir)
	}
	uri := env.Config.MongoURI
	d := map[string]any{"uri": config.RedactURI(uri), "database": config.DatabaseName(uri)}
	opts := options.Client().ApplyURI(uri).SetAppName("mozaiks-doctor")
	// Bound the wait, unless the URI chose its own bounds.
	if !strings.Contains(strings.ToLower(uri), "serverselectiontimeoutms") {
		opts.SetServerSelectionTimeout(5 * time.Second)
	}
	if !strings.Contains(strings.ToLower(uri), "connecttimeoutms") {
		opts.SetConnectTimeout(5 * time.Second)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		// ApplyURI/Connect errors can quote the URI: classify, never echo.
		return fail("MONGO_URI is not usable: "+mongoCause(err, false).msg, "check the URI's form: mongodb://user:pass@host:27017/MozaiksAI", d)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = client.Disconnect(cctx)
	}()
	var rtts []time.Duration
	for range mongoPings {
		t0 := env.now()
		if err := client.Ping(ctx, nil); err != nil {
			c := mongoCause(err, tlsRequested(uri))
			d["cause"] = c.kind
			return fail("cannot reach MongoDB at "+config.RedactURI(uri)+": "+c.msg, c.hint, d)
		}
		rtts = append(rtts, env.now().Sub(t0))
	}
	med := median(rtts)
	d["median_ping_ms"] = float64(med.Microseconds()) / 1000
	var info bson.M
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err == nil {
		if v, ok := info["version"].(string); ok {
			d["server_version"] = v
		}
	}
	ver, _ := d["server_version"].(string)
	if ver != "" && majorVersion(ver) > 0 && majorVersion(ver) < 5 {
		return warn(fmt.Sprintf("MongoDB %s is older than 5.0, the oldest the runtime supports", ver), "upgrade MongoDB to 5.0 or newer", d)
	}
	if med > mongoSlowPing {
		return warn(fmt.Sprintf("MongoDB answers slowly: median ping %s over %d pings", med.Round(time.Millisecond), mongoPings),
			"run MongoDB close to the runtime (same host or zone); check its load", d)
	}
	return ok(fmt.Sprintf("MongoDB %s, median ping %s", orDash(ver, "(version unknown)"), med.Round(10*time.Microsecond)), d)
}

// tlsRequested: the URI asks for TLS (explicitly, or by mongodb+srv's default).
func tlsRequested(uri string) bool {
	l := strings.ToLower(uri)
	if strings.Contains(l, "tls=false") || strings.Contains(l, "ssl=false") {
		return false
	}
	return strings.HasPrefix(l, "mongodb+srv://") || strings.Contains(l, "tls=true") || strings.Contains(l, "ssl=true")
}

func majorVersion(v string) int {
	var m int
	_, _ = fmt.Sscanf(v, "%d", &m)
	return m
}

type mongoClass struct{ kind, msg, hint string }

// mongoCause classifies a driver error without quoting it: driver messages
// can contain the URI and with it the password.
func mongoCause(err error, wantTLS bool) mongoClass {
	var ce mongo.CommandError
	s := strings.ToLower(err.Error())
	switch {
	case wantTLS && (strings.Contains(s, "last error: eof") || strings.Contains(s, "connection reset") || strings.Contains(s, "first record does not look like a tls handshake")):
		return mongoClass{"tls", "TLS handshake failed: the server closed the connection (it does not speak TLS on that port?)", "match tls=true/false in MONGO_URI to the server (a local mongo container usually has no TLS)"}
	case errors.As(err, &ce) && (ce.Code == 18 || ce.Code == 13):
		return mongoClass{"auth", "authentication failed (wrong user, password or authSource)", "check the user and password in MONGO_URI and ?authSource=admin for a root user; special characters in the password must be percent-encoded"}
	case strings.Contains(s, "auth") && (strings.Contains(s, "fail") || strings.Contains(s, "error")):
		return mongoClass{"auth", "authentication failed (wrong user, password or authSource, or an unsupported mechanism)", "check the user and password in MONGO_URI and ?authSource=admin for a root user; special characters in the password must be percent-encoded"}
	case strings.Contains(s, "x509") || strings.Contains(s, "certificate") || strings.Contains(s, "tls:") || strings.Contains(s, "handshake"):
		return mongoClass{"tls", "TLS handshake failed", "match tls=true/false in MONGO_URI to the server; for a private CA add tlsCAFile=/path/ca.pem"}
	case strings.Contains(s, "no such host") || strings.Contains(s, "server misbehaving"):
		return mongoClass{"dns", "the host name does not resolve", "check the host in MONGO_URI (inside compose it is the service name, e.g. mongo)"}
	case strings.Contains(s, "connection refused"):
		return mongoClass{"unreachable", "connection refused (nothing listens there)", "start MongoDB (mozaiks up) or fix the host:port in MONGO_URI"}
	case strings.Contains(s, "server selection") || errors.Is(err, context.DeadlineExceeded) || strings.Contains(s, "timeout"):
		return mongoClass{"unreachable", "no server answered in time", "check that MongoDB runs and a firewall lets the runtime reach it (mozaiks status)"}
	case strings.Contains(s, "error parsing uri") || strings.Contains(s, "scheme must be"):
		return mongoClass{"uri", "the URI cannot be parsed", "use mongodb://user:pass@host:27017/MozaiksAI"}
	default:
		return mongoClass{"other", "the ping failed", "read MongoDB's log: mozaiks logs mongo --tail 50"}
	}
}
