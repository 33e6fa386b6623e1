// Package ids holds the rule every id of the runtime follows: app, user and
// chat ids and workflow names. It is a leaf: config, workflow and the HTTP
// layer all check ids with it.
package ids

// Valid reports whether s is a valid app/user/chat id or workflow name:
// 1-128 characters of [A-Za-z0-9._:@-], and not "." or "..".
func Valid(s string) bool {
	if len(s) == 0 || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}
