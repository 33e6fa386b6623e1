package initwiz

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// Options are the inputs of one init run.
type Options struct {
	Dir            string
	NonInteractive bool
	Force          bool
	SkipChecks     bool
	// Flags holds the answers given as flags, by env name (only flags that were set).
	Flags   map[string]string
	Environ []string // KEY=VALUE; nil means none

	In  io.Reader
	Out io.Writer // the diff
	Err io.Writer // the form, progress, warnings
	// Interactive says the form may run (stdin is a terminal, or a test feeds
	// the accessible mode); NonInteractive overrides it.
	Interactive bool
	Accessible  bool

	HTTPClient   *http.Client
	MongoTimeout time.Duration // 0: the store's own (mongo.DefaultServerSelectionTimeout)
	Rand         io.Reader     // secret source; nil means crypto/rand
	ImageTag     string
}

// Run is `mozaiks init`. It returns *uerr.Error for everything the operator
// can act on; nothing is written unless every step before the write succeeded.
func Run(ctx context.Context, o Options) error {
	dir, err := filepath.Abs(cmp.Or(o.Dir, "."))
	if err != nil {
		return uerr.Wrap(err, uerr.ExitUsage, "cannot resolve --dir "+o.Dir, "")
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return uerr.New(uerr.ExitUsage, "--dir "+dir+" is a file, not a directory", "pass a directory (it is created if missing)")
	}
	envPath := filepath.Join(dir, ".env")
	prevRaw, err := os.ReadFile(envPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return uerr.Wrap(err, uerr.ExitFailed, "cannot read "+envPath, "check its permissions")
	}
	prev := map[string]string{}
	if prevRaw != nil {
		if prev, err = config.ReadDotEnv(envPath); err != nil {
			return uerr.Wrap(err, uerr.ExitFailed, "cannot parse "+envPath, "fix the line it names, or move the file away to start over")
		}
	}
	environ := envMap(o.Environ)
	prevAnswers := previousAnswers(prev)
	if _, named := prev[EnvProject]; !named && len(prev) > 0 {
		// Written before init named the project: docker compose named it
		// after the directory, and its volumes (the data) carry that name.
		// Keep it, so the upgrade finds the same project and volumes.
		if name := composeDirName(o.Dir); validProject(name) == nil {
			prevAnswers[EnvProject] = name
		}
	}
	a := mergeAnswers(prevAnswers, environ, o.Flags)

	p := newPrompter(ctx, o.In, o.Err, o.Accessible)
	interactive := o.Interactive && !o.NonInteractive
	if interactive {
		if err := p.askAnswers(ctx, &a); err != nil {
			return err
		}
	} else {
		a.fillDefaults()
		if m := a.missing(); len(m) > 0 {
			return uerr.New(uerr.ExitUsage, "a non-interactive init needs: "+strings.Join(m, "; "),
				"pass them as flags or environment variables, or run `mozaiks init` in a terminal to be asked")
		}
	}
	for {
		var probs []string
		if a, probs = a.Normalize(); len(probs) > 0 {
			return uerr.New(uerr.ExitUsage, "invalid answers: "+strings.Join(probs, "; "), "fix them and run `mozaiks init` again")
		}
		if o.SkipChecks {
			break
		}
		err := runChecks(ctx, o, a)
		if err == nil {
			break
		}
		if !interactive || ctx.Err() != nil {
			return err
		}
		// A typo in a key or URI should not cost the operator every other answer.
		again, aerr := p.retry(ctx, err)
		if aerr != nil {
			return aerr
		}
		if !again {
			return err
		}
		if err := p.askAnswers(ctx, &a); err != nil {
			return err
		}
	}

	secretSrc := map[string]string{}
	for _, k := range []string{envJWTSecret, envMongoUser, envMongoPass, envDiagToken} {
		if v, ok := environ[k]; ok {
			secretSrc[k] = v
		} else if v, ok := prev[k]; ok {
			secretSrc[k] = v
		}
	}
	s, err := keepOrGenerate(secretSrc, a.Database, cmp.Or[io.Reader](o.Rand, rand.Reader))
	if err != nil {
		return uerr.Wrap(err, uerr.ExitFailed, "cannot generate secrets", "")
	}
	files, err := Render(a, s, unknownKeys(prev, prevRaw), RenderOptions{ImageTag: o.ImageTag})
	if err != nil {
		return uerr.Wrap(err, uerr.ExitFailed, "cannot render the deployment files", "this is a bug in mozaiks; please report it")
	}
	changes, err := plan(dir, files)
	if err != nil {
		return uerr.Wrap(err, uerr.ExitFailed, "cannot read the existing files in "+dir, "check their permissions")
	}
	return apply(ctx, o, p, interactive, dir, a, changes, newRedactor(secretValues(prev), secretValues(envValues(a, s))))
}

// apply shows what would change, asks when existing files change, and writes.
func apply(ctx context.Context, o Options, p prompter, interactive bool, dir string, a Answers, changes []change, red redactor) error {
	var write []File
	modified := 0
	for _, c := range changes {
		switch {
		case c.modified():
			modified++
			fmt.Fprint(o.Out, unifiedDiff(c, red))
			write = append(write, c.File)
		case c.added():
			write = append(write, c.File)
		case c.loosened():
			fmt.Fprintf(o.Err, "%s is mode %v; it holds secrets and becomes %v.\n", c.Path, c.OldMode.Perm(), c.Mode.Perm())
			write = append(write, c.File)
		}
	}
	if len(write) == 0 {
		fmt.Fprintf(o.Err, "Nothing to change in %s.\n", dir)
		return nil
	}
	if modified > 0 && !o.Force {
		if !interactive {
			return uerr.New(uerr.ExitFailed, fmt.Sprintf("%d existing file(s) in %s would change (diff above)", modified, dir),
				"re-run with --force to write them, or interactively to confirm")
		}
		ok, err := p.confirm(ctx, fmt.Sprintf("Overwrite %d existing file(s) in %s?", modified, dir), "Write", "Cancel")
		if err != nil {
			return err
		}
		if !ok {
			return uerr.New(uerr.ExitFailed, "cancelled: nothing was written", "")
		}
	}
	if err := ctx.Err(); err != nil {
		return interrupted(err)
	}
	if err := writeAll(dir, write); err != nil {
		return uerr.Wrap(err, uerr.ExitFailed, "cannot write the deployment files into "+dir+" (nothing was changed)",
			"pass a writable --dir, or fix the permissions of "+dir)
	}
	printSummary(o.Err, dir, a, write)
	return nil
}

func runChecks(ctx context.Context, o Options, a Answers) error {
	if a.Database == "external" {
		fmt.Fprintf(o.Err, "Checking MongoDB at %s ...\n", config.RedactURI(a.MongoURI))
		if err := checkMongo(ctx, a.MongoURI, o.MongoTimeout); err != nil { // 0: the store's own timeout
			if ctx.Err() != nil {
				return interrupted(ctx.Err())
			}
			return err
		}
	}
	base := cmp.Or(a.OpenAIBaseURL, defaultOpenAIBase)
	fmt.Fprintf(o.Err, "Checking the LLM endpoint %s ...\n", base)
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	return checkLLM(ctx, client, a.OpenAIBaseURL, a.OpenAIAPIKey, a.Model, o.Err)
}

// envValues are the secret values the new .env holds, by key.
func envValues(a Answers, s Secrets) map[string]string {
	m := map[string]string{
		EnvAPIKey: a.OpenAIAPIKey, envJWTSecret: s.JWTSecret, envMongoPass: s.MongoRootPassword, EnvMongoURI: a.MongoURI,
		envDiagToken: s.DiagToken,
	}
	if a.Database == "bundled" {
		m[EnvMongoURI] = bundledMongoURI(s)
	}
	return m
}

// secretValues picks the secret values out of a .env's values.
func secretValues(env map[string]string) map[string]string {
	out := map[string]string{}
	for k := range secretKeys {
		if v := env[k]; v != "" {
			out[k] = v
		}
	}
	return out
}

func printSummary(w io.Writer, dir string, a Answers, written []File) {
	fmt.Fprintf(w, "Wrote into %s:\n", dir)
	for _, f := range written {
		fmt.Fprintf(w, "  %s\n", f.Path)
	}
	fmt.Fprintln(w, "Next:")
	if a.Deployment == "prod" {
		fmt.Fprintf(w, "  mozaiks up --dir %s --prod   (or: docker compose -f docker-compose.prod.yml up -d)\n", dir)
	} else {
		fmt.Fprintf(w, "  mozaiks up --dir %s   (or: docker compose up -d)\n", dir)
	}
	switch a.Proxy {
	case "nginx":
		fmt.Fprintf(w, "  nginx runs as the compose service proxy with %s (upstream runtime:8000); for an nginx on this host, re-run init with --proxy nginx-host\n",
			filepath.Join(dir, "nginx", "mozaiks.conf"))
	case "nginx-host":
		fmt.Fprintf(w, "  copy %s into your nginx (e.g. /etc/nginx/conf.d/mozaiks.conf; upstream 127.0.0.1:%s), then: nginx -t && nginx -s reload\n",
			filepath.Join(dir, NginxHostConf), a.HTTPPort)
	}
	if strings.HasPrefix(a.Proxy, "nginx") {
		if endpointOf(a.PublicURL).https {
			fmt.Fprintf(w, "  put fullchain.pem and privkey.pem for %s into %s\n", endpointOf(a.PublicURL).host, filepath.Join(dir, "nginx", "certs"))
		}
	}
	if a.K8s {
		fmt.Fprintf(w, "  kubectl apply -f %s\n", filepath.Join(dir, "k8s"))
	}
	printCloudSteps(w, dir, a)
	doctor := "mozaiks doctor --dir " + dir
	if a.Deployment == "prod" {
		doctor += " --prod"
	}
	fmt.Fprintf(w, "  %s   (checks the setup end to end)\n", doctor)
	if a.Deployment == "prod" {
		fmt.Fprintln(w, "  authentication is on: docs/operating.md shows how to get a token for your clients")
	}
}

// previousAnswers reads the answers of an earlier .env. A bundled install's
// URI is generated, not an answer to carry over; a .env written by hand (as
// DEPLOYMENT.md shows) has no MOZAIKS_DATABASE, so its MONGO_URI decides.
func previousAnswers(prev map[string]string) map[string]string {
	db := strings.ToLower(prev[EnvDatabase])
	uri := prev[EnvMongoURI]
	if db == "" && uri != "" {
		db = "external"
		if u, err := url.Parse(uri); err == nil && u.Hostname() == "mongo" {
			db = "bundled"
		}
		out := without(prev, "")
		out[EnvDatabase] = db
		prev = out
	}
	if db != "external" {
		return without(prev, EnvMongoURI)
	}
	return prev
}

// composeDirName is the project name docker compose derives from a
// directory: its base name, lower-cased, without characters compose drops.
func composeDirName(dir string) string {
	abs, err := filepath.Abs(cmp.Or(dir, "."))
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, r := range strings.ToLower(filepath.Base(abs)) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		}
	}
	return strings.TrimLeft(b.String(), "_-")
}

func envMap(environ []string) map[string]string {
	m := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func without(m map[string]string, key string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}
