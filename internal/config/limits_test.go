package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestShortSecretRefusedNamingTheSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		secret string
		ok     bool
	}{
		{"x", false},
		{strings.Repeat("s", MinSecretBytes-1), false},
		{strings.Repeat("s", MinSecretBytes), true},
	} {
		_, err := Load(LoadOptions{Dir: t.TempDir(), Environ: []string{"AUTH_ENABLED=true", "AUTH_JWT_SECRET=" + tc.secret}})
		if tc.ok {
			if err != nil {
				t.Errorf("%d-byte secret: %v", len(tc.secret), err)
			}
			continue
		}
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Setting.Env != "AUTH_JWT_SECRET" || strings.Contains(err.Error(), tc.secret+`"`) {
			t.Errorf("%d-byte secret: err = %v, want an InvalidError naming AUTH_JWT_SECRET without its value", len(tc.secret), err)
		}
	}
	// With auth off the secret is unused and not checked.
	if _, err := Load(LoadOptions{Dir: t.TempDir(), Environ: []string{"AUTH_JWT_SECRET=short"}}); err != nil {
		t.Errorf("auth off, short secret: %v", err)
	}
}

func TestLimitsAndClockSkew(t *testing.T) {
	t.Parallel()
	cfg, err := Load(LoadOptions{Dir: t.TempDir(), Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits != DefaultLimits() || cfg.AuthClockSkew != 30*time.Second {
		t.Fatalf("defaults: %+v skew %s", cfg.Limits, cfg.AuthClockSkew)
	}
	cfg, err = Load(LoadOptions{Dir: t.TempDir(), Environ: []string{"AUTH_CLOCK_SKEW=5s", "MOZAIKS_MAX_MESSAGE_BYTES=1000",
		"MOZAIKS_MESSAGES_PER_MINUTE=0", "MOZAIKS_SESSIONS_PER_MINUTE=3", "MOZAIKS_MAX_SOCKETS_PER_USER=2",
		"MOZAIKS_MAX_CONNS_PER_IP=7", "MOZAIKS_BODY_TIMEOUT=2s", "MOZAIKS_MAX_QUEUED_PER_CHAT=4"}})
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{MaxMessageBytes: 1000, MessagesPerMinute: 0, SessionsPerMinute: 3, Burst: 10, MaxSocketsPerUser: 2,
		MaxQueuedPerChat: 4, MaxConnsPerIP: 7, BodyTimeout: 2 * time.Second}
	if cfg.Limits != want || cfg.AuthClockSkew != 5*time.Second {
		t.Fatalf("got %+v skew %s, want %+v", cfg.Limits, cfg.AuthClockSkew, want)
	}
	for _, env := range []string{"AUTH_CLOCK_SKEW=-1s", "AUTH_CLOCK_SKEW=1h", "MOZAIKS_MAX_MESSAGE_BYTES=0",
		"MOZAIKS_MESSAGES_PER_MINUTE=-1", "MOZAIKS_BODY_TIMEOUT=10ms", "MOZAIKS_MAX_CONNS_PER_IP=lots"} {
		_, err := Load(LoadOptions{Dir: t.TempDir(), Environ: []string{env}})
		var ie *InvalidError
		if !errors.As(err, &ie) || !strings.HasPrefix(env, ie.Setting.Env+"=") {
			t.Errorf("%s: err = %v", env, err)
		}
	}
}
