package app

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// TestOpenStoreNamesTheMongoCause: the runtime's start-up error used to be
// "cannot use MONGO_URI ... check the URI" whatever went wrong; it now names
// the classified cause (and still never the password).
func TestOpenStoreNamesTheMongoCause(t *testing.T) {
	t.Parallel()
	good := ferret.DB(t)
	cases := []struct{ name, uri, want string }{
		{"auth", strings.Replace(good, "mongodb://", "mongodb://nobody:wr0ngpassw0rd@", 1) + "?authMechanism=SCRAM-SHA-256", "authentication failed"},
		{"malformed", "mongodb://nobody:wr0ngpassw0rd@host:port/db", "cannot be parsed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st, _, err := OpenStore(context.Background(), &config.Config{MongoURI: c.uri}, slog.New(slog.DiscardHandler))
			if err == nil {
				st.Close()
				t.Fatal("OpenStore succeeded")
			}
			e, ok := uerr.As(err)
			if !ok || !strings.Contains(e.Msg, c.want) || e.Code != uerr.ExitPrerequisite {
				t.Fatalf("err = %#v, want exit 4 naming %q", err, c.want)
			}
			if strings.Contains(e.Msg+e.Hint, "wr0ngpassw0rd") {
				t.Errorf("password in the message: %q / %q", e.Msg, e.Hint)
			}
		})
	}
}
