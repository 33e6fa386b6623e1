package initwiz

import (
	"bufio"
	"bytes"
	"sort"
	"strings"
)

// managedKeys are the .env keys init writes itself; every other key of a
// previous .env is kept as it was.
var managedKeys = map[string]bool{
	EnvDeployment: true, EnvDatabase: true, EnvProxy: true, EnvK8s: true, EnvCloudRun: true, EnvContainerApps: true,
	EnvAPIKey: true, EnvBaseURL: true, EnvModel: true, EnvMongoURI: true,
	envMongoUser: true, envMongoPass: true, EnvPublicURL: true, EnvCORS: true,
	EnvAppID: true, envJWTSecret: true, EnvProject: true, EnvHTTPPort: true, envDiagToken: true,
}

// secretKeys are never shown, not even in a diff.
var secretKeys = map[string]bool{EnvAPIKey: true, EnvMongoURI: true, envMongoPass: true, envJWTSecret: true, envDiagToken: true}

// KV is one kept .env entry.
type KV struct{ Key, Value string }

// unknownKeys returns the previous .env's keys that init does not manage, in
// the order they appeared in the file (sorted when the order is unknown).
func unknownKeys(prev map[string]string, raw []byte) []KV {
	var order []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		line = strings.TrimPrefix(line, "export ")
		k, _, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || strings.HasPrefix(line, "#") || seen[k] {
			continue
		}
		if _, in := prev[k]; in && !managedKeys[k] {
			order = append(order, k)
			seen[k] = true
		}
	}
	var rest []string
	for k := range prev {
		if !seen[k] && !managedKeys[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	order = append(order, rest...)
	out := make([]KV, 0, len(order))
	for _, k := range order {
		out = append(out, KV{Key: k, Value: prev[k]})
	}
	return out
}

// envLine renders KEY=value so that both docker compose and the runtime's
// dotenv reader return value unchanged: plain when it is safe, otherwise in
// single quotes (no escapes, no ${} expansion in either reader).
func envLine(key, value string) string {
	if value == "" || isPlain(value) {
		return key + "=" + value
	}
	if !strings.ContainsAny(value, "'\n\r") {
		return key + "='" + value + "'"
	}
	// A single quote or newline leaves only double quotes; escape what they interpret.
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "$", `\$`)
	return key + `="` + r.Replace(value) + `"`
}

func isPlain(v string) bool {
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.,:/@+=%?&", c)) {
			return false
		}
	}
	return true
}
