package config

import (
	"regexp"
	"testing"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)

// FuzzValidID: the id validator accepts exactly the documented alphabet and
// length, never "." or "..", whatever the bytes.
func FuzzValidID(f *testing.F) {
	for _, s := range []string{"chat_1.a:b@c-d", "", ".", "..", "../etc/passwd", "a b", "ü", "a\x00b", "chat_\u202e",
		"00000000-0000-0000-0000-000000000000", "%2e%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := idPattern.MatchString(s) && s != "." && s != ".."
		if got := ValidID(s); got != want {
			t.Fatalf("ValidID(%q) = %v, want %v", s, got, want)
		}
	})
}
