package mongo_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestProbeClassifiesTheCause: every caller (runtime start-up, init, the
// doctor) gets one vocabulary of causes from one connect policy, against a
// real server (FerretDB) and real network failures.
func TestProbeClassifiesTheCause(t *testing.T) {
	t.Parallel()
	good := ferret.DB(t)
	cases := []struct {
		name, uri string
		want      string // cause kind; "" for success
	}{
		{"reachable", good, ""},
		{"refused", "mongodb://" + closedPort(t) + "/MozaiksAI", mongo.CauseRefused},
		{"dns", "mongodb://mongo.mozaiks-test.invalid:27017/MozaiksAI", mongo.CauseDNS},
		{"malformed", "mongodb://user:pa:ss@@host:notaport/db", mongo.CauseURI},
		{"tls to a plain server", good + "?tls=true", mongo.CauseTLS},
		{"auth", strings.Replace(good, "mongodb://", "mongodb://nobody:wrongpass@", 1) + "?authMechanism=SCRAM-SHA-256", mongo.CauseAuth},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := mongo.Probe(ctx, c.uri, mongo.ProbeOptions{Pings: 3, Timeout: 2 * time.Second})
			if c.want == "" {
				if err != nil {
					t.Fatalf("probe: %v", err)
				}
				if len(res.Pings) != 3 || res.Median() <= 0 {
					t.Errorf("pings = %v", res.Pings)
				}
				return
			}
			var ce *mongo.ConnectError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConnectError", err)
			}
			if ce.Cause.Kind != c.want || ce.Cause.Msg == "" || ce.Cause.Hint == "" {
				t.Errorf("cause = %+v, want kind %s", ce.Cause, c.want)
			}
			if mongo.Classify(err) != ce.Cause {
				t.Errorf("Classify disagrees with the error's own cause")
			}
		})
	}
}

// TestOpenNamesTheCause: Open's failure carries the classified cause and
// never the password.
func TestOpenNamesTheCause(t *testing.T) {
	t.Parallel()
	_, err := mongo.Open(context.Background(), "mongodb://root:s3cretpass@h:bad/db", mongo.Options{})
	if err == nil {
		t.Fatal("Open accepted a malformed URI")
	}
	if c := mongo.Classify(err); c.Kind != mongo.CauseURI {
		t.Errorf("cause = %+v, want uri", c)
	}
	var ce *mongo.ConnectError
	if !errors.As(err, &ce) || strings.Contains(ce.URI, "s3cretpass") || strings.Contains(ce.Cause.Msg+ce.Cause.Hint, "s3cretpass") {
		t.Errorf("the password leaks into the user-safe part: %+v", ce)
	}
}
