package mongo

import (
	"net/url"
	"strings"
)

// DefaultDatabase is the database used when the URI names none.
const DefaultDatabase = "MozaiksAI"

// DatabaseName is the database a MongoDB URI names in its path, or
// DefaultDatabase. (The store owns its URI; it takes no configuration
// package, so it stays below config in the import direction.)
func DatabaseName(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return DefaultDatabase
	}
	if name := strings.Trim(u.Path, "/"); name != "" {
		return name
	}
	return DefaultDatabase
}

// RedactURI hides the password of a MongoDB URI for output.
func RedactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparseable URI)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	return u.String()
}
