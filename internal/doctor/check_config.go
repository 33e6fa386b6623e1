package doctor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mozaiks/mozaiks/internal/config"
)

func checkConfig() Check {
	return Check{Code: "CFG01", Name: "configuration", Run: runConfig}
}

func runConfig(_ context.Context, env *Env) Result {
	details := map[string]any{}
	for _, s := range config.Settings {
		details[s.Env] = describeSetting(s, env.Values[s.Key], env.Sources[s.Key])
	}
	details["deployment"] = env.DeploymentKind()
	if env.ConfigErr != nil {
		var inv *config.InvalidError
		if errors.As(env.ConfigErr, &inv) {
			// InvalidError's text already redacts secret values.
			return fail(inv.Error(), fmt.Sprintf("fix %s where it is set (%s)%s", inv.Setting.Env, inv.Source, flagHint(inv.Setting)), details)
		}
		return fail("configuration cannot be loaded", "check .env and --config", details)
	}
	c := env.Config
	if slices.Contains(c.CORSOrigins, "*") {
		return warn("CORS_ORIGINS is *: any web site may open sockets to this runtime",
			"set CORS_ORIGINS to the exact origins of your front-ends, e.g. https://app.example.com", details)
	}
	return ok(fmt.Sprintf("valid for a %s deployment; %d settings from .env, %d from the environment, %d from flags or file",
		env.DeploymentKind(), countSources(env.Sources, config.SourceDotEnv), countSources(env.Sources, config.SourceEnv),
		countSources(env.Sources, config.SourceFlag)+countSources(env.Sources, config.SourceFile)), details)
}

func flagHint(s config.Setting) string {
	if s.Flag == "" {
		return ""
	}
	return " or pass --" + s.Flag
}

func countSources(src map[string]config.Source, s config.Source) int {
	n := 0
	for _, v := range src {
		if v == s {
			n++
		}
	}
	return n
}

// describeSetting shows a value and its source; secrets only as set/unset.
func describeSetting(s config.Setting, v string, src config.Source) string {
	switch {
	case s.Key == "mongo_uri" && v != "":
		v = config.RedactURI(v)
	case s.Secret && v != "":
		v = "(set)"
	case v == "":
		v = "(empty)"
	}
	return v + " [" + string(src) + "]"
}

func checkSecrets() Check {
	return Check{Code: "SEC01", Name: ".env secrets", Run: runSecrets, Fix: fixSecrets}
}

var placeholders = []string{"changeme", "change-me", "change_me", "your-key", "your_key", "yourkey", "replace", "todo", "example", "placeholder", "xxx", "secret", "password", "sk-...", "<", "..."}

func isPlaceholder(v string) bool {
	l := strings.ToLower(strings.TrimSpace(v))
	if l == "" {
		return true
	}
	for _, p := range placeholders {
		if l == p || (len(p) > 3 && strings.Contains(l, p) && len(l) < len(p)+8) {
			return true
		}
	}
	return strings.HasPrefix(l, "<") && strings.HasSuffix(l, ">")
}

func runSecrets(_ context.Context, env *Env) Result {
	path := filepath.Join(env.Dir, ".env")
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return skip("no .env in " + dirName(env.Dir) + " (settings come from the environment)")
	}
	if err != nil {
		return fail("cannot stat .env", "check the permissions of "+dirName(env.Dir), map[string]any{"error": err.Error()})
	}
	mode := st.Mode().Perm()
	details := map[string]any{"path": path, "mode": fmt.Sprintf("%04o", mode)}
	var fails, warns []string
	if mode&0o004 != 0 {
		fails = append(fails, fmt.Sprintf(".env is world-readable (mode %04o)", mode))
	} else if mode&0o070 != 0 {
		warns = append(warns, fmt.Sprintf(".env is group-accessible (mode %04o)", mode))
	}
	// Read afresh rather than env.DotEnv: --fix may have just changed the file.
	dotenv, err := config.ReadDotEnv(path)
	if err != nil {
		return fail("cannot read .env", "fix the line it names", map[string]any{"error": err.Error()})
	}
	var weak []string
	for k, v := range dotenv {
		if !secretName(k) {
			continue
		}
		switch {
		case strings.TrimSpace(v) == "" && (k == "MONGO_URI" || k == "OPENAI_API_KEY"):
			// Empty is a choice here: the embedded store; a keyless local
			// model endpoint (LLM01 judges that).
		case isPlaceholder(v):
			fails = append(fails, k+" is empty or a placeholder")
		case strings.Contains(strings.ToUpper(k), "JWT") && len(v) < 32:
			weak = append(weak, k)
		}
	}
	slices.Sort(weak)
	if len(weak) > 0 {
		warns = append(warns, strings.Join(weak, ", ")+" shorter than 32 characters")
	}
	missing := missingSecretKeys(env, dotenv)
	if len(missing) > 0 {
		fails = append(fails, "missing "+strings.Join(missing, ", "))
		details["missing"] = missing
	}
	slices.Sort(fails)
	switch {
	case len(fails) > 0:
		return fail(strings.Join(append(fails, warns...), "; "), "chmod 600 .env and set real secrets (mozaiks doctor --fix does the safe part; mozaiks init --force rewrites .env)", details)
	case len(warns) > 0:
		return warn(strings.Join(warns, "; "), "chmod 600 .env; use secrets of 32+ random characters", details)
	}
	return ok(fmt.Sprintf(".env mode %04o, secrets set", mode), details)
}

// missingSecretKeys are the secrets the deployment references but nothing
// sets, and which the doctor may generate: AUTH_JWT_SECRET when shared-secret
// auth is on, and ${...PASSWORD/SECRET} the compose file interpolates.
func missingSecretKeys(env *Env, dotenv map[string]string) []string {
	var out []string
	set := func(k string) bool {
		_, inEnv := env.Environ[k]
		_, inFile := dotenv[k]
		return inEnv || inFile
	}
	if strings.EqualFold(strings.TrimSpace(env.Values["auth_enabled"]), "true") && env.Values["auth_issuer"] == "" && env.Values["auth_jwt_secret"] == "" && !set("AUTH_JWT_SECRET") {
		out = append(out, "AUTH_JWT_SECRET")
	}
	for _, v := range env.composeVars() {
		if generatable(v) && !set(v) && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// generatable: a random value is a valid answer (not so for an API key,
// which only its issuer can provide).
func generatable(k string) bool {
	k = strings.ToUpper(k)
	return (strings.Contains(k, "PASSWORD") || strings.Contains(k, "SECRET")) && !strings.Contains(k, "API")
}

func fixSecrets(_ context.Context, env *Env) (string, error) {
	path := filepath.Join(env.Dir, ".env")
	st, err := os.Stat(path)
	if err != nil {
		return "", nil
	}
	var did []string
	if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return "", fmt.Errorf("chmod 600 %s: %w", path, err)
		}
		did = append(did, fmt.Sprintf("chmod %04o -> 0600 .env", st.Mode().Perm()))
	}
	dotenv, err := config.ReadDotEnv(path)
	if err != nil {
		return "", err
	}
	missing := missingSecretKeys(env, dotenv)
	if len(missing) > 0 {
		var b strings.Builder
		var generated, recovered []string
		for _, k := range missing {
			// The bundled Mongo's root password also sits in MONGO_URI, which
			// the runtime uses: a fresh one would lock the runtime out.
			if v := rootPasswordInURI(k, dotenv); v != "" {
				fmt.Fprintf(&b, "%s=%s\n", k, v)
				recovered = append(recovered, k)
				continue
			}
			v, err := randomSecret()
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "%s=%s\n", k, v)
			generated = append(generated, k)
		}
		if err := appendFile(path, b.String()); err != nil {
			return "", err
		}
		if len(generated) > 0 {
			did = append(did, "added generated "+strings.Join(generated, ", ")+" to .env")
		}
		if len(recovered) > 0 {
			did = append(did, "added "+strings.Join(recovered, ", ")+" to .env from MONGO_URI")
		}
	}
	return strings.Join(did, "; "), nil
}

// appendFile appends whole lines, starting on a fresh line.
func appendFile(path, s string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		s = "\n" + s
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return fmt.Errorf("append to %s: %w", path, err)
	}
	return f.Close()
}

func randomSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func dirName(d string) string {
	if d == "" {
		return "the working directory"
	}
	return d
}

// rootPasswordInURI is the password of MONGO_URI's user when k is
// MONGO_ROOT_PASSWORD and that user is MONGO_ROOT_USERNAME ("" otherwise).
func rootPasswordInURI(k string, dotenv map[string]string) string {
	if k != "MONGO_ROOT_PASSWORD" {
		return ""
	}
	u, err := url.Parse(dotenv["MONGO_URI"])
	if err != nil || u.User == nil {
		return ""
	}
	pw, ok := u.User.Password()
	if !ok || u.User.Username() != dotenv["MONGO_ROOT_USERNAME"] {
		return ""
	}
	return pw
}
