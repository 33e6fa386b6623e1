package initwiz

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/charmbracelet/huh"
	"github.com/charmbracelet/x/term"

	"github.com/mozaiks/mozaiks/internal/uerr"
)

// prompter asks the operator. The full-screen form needs a terminal; the
// accessible mode (screen readers, ACCESSIBLE=1, tests) reads lines.
type prompter struct {
	in         io.Reader
	out        io.Writer
	accessible bool
}

func newPrompter(ctx context.Context, in io.Reader, out io.Writer, accessible bool) prompter {
	if accessible && !isTerminal(in) {
		// One reader for the whole run: its buffer may hold the next answers.
		in = &lineReader{ctx: ctx, br: bufio.NewReader(in)}
	}
	return prompter{in: in, out: out, accessible: accessible}
}

// page is one screen of questions; hide skips it (e.g. the Mongo URI unless external).
type page struct {
	title  string
	fields []huh.Field
	hide   func() bool
}

// askAnswers runs the form in two stages: the deployment and database first,
// because the defaults of the rest (public URL, CORS, proxy) depend on them.
func (p prompter) askAnswers(ctx context.Context, a *Answers) error {
	work := *a
	if work.Deployment == "" {
		work.Deployment = "dev"
	}
	if work.Database == "" {
		work.Database = "bundled"
	}
	first := []page{
		{title: "Deployment", fields: []huh.Field{
			huh.NewSelect[string]().Title("Deployment").
				Options(huh.NewOption("dev: compose with Mongo on localhost, auth off", "dev"),
					huh.NewOption("prod: auth on, restart policies, TLS reverse proxy", "prod")).
				Value(&work.Deployment),
			huh.NewSelect[string]().Title("Database").
				Options(huh.NewOption("bundled: a mongo container", "bundled"),
					huh.NewOption("external: your MongoDB (Atlas, managed, self-hosted)", "external"),
					huh.NewOption("embedded: SQLite inside the runtime container (small installs)", "embedded")).
				Value(&work.Database),
		}},
		{title: "External MongoDB", hide: func() bool { return work.Database != "external" }, fields: []huh.Field{
			p.secretInput().Title("MongoDB URI").Description("mongodb:// or mongodb+srv://, with user and password if it needs them").
				Validate(p.check(validMongoURI)).Value(&work.MongoURI),
		}},
	}
	if err := p.run(ctx, first); err != nil {
		return err
	}
	work.fillDefaults()
	second := []page{
		{title: "LLM", fields: []huh.Field{
			huh.NewInput().Title("OpenAI-compatible base URL").Description("leave empty for api.openai.com; e.g. http://vllm:8000/v1").
				Validate(p.check(validBaseURL)).Value(&work.OpenAIBaseURL),
			p.secretInput().Title("API key").
				Validate(p.check(func(s string) error {
					if strings.TrimSpace(s) == "" && strings.TrimSpace(work.OpenAIBaseURL) == "" {
						return errors.New("an API key is required for api.openai.com")
					}
					return nil
				})).Value(&work.OpenAIAPIKey),
			huh.NewInput().Title("Default model").Validate(p.check(validModel)).Value(&work.Model),
		}},
		{title: "Network", fields: []huh.Field{
			huh.NewInput().Title("Public URL").Description("how browsers reach the runtime, e.g. https://agents.example.com").
				Validate(p.check(validPublicURL)).Value(&work.PublicURL),
			huh.NewInput().Title("CORS origins").Description("comma list of the origins your frontends are served from").
				Validate(p.check(func(s string) error { _, err := normalizeOrigins(s, work.Deployment); return err })).
				Value(&work.CORSOrigins),
			huh.NewInput().Title("Default app id").Validate(p.check(validAppID)).Value(&work.AppID),
			huh.NewSelect[string]().Title("Reverse proxy (in docker-compose.prod.yml)").
				Options(huh.NewOption("caddy: automatic TLS", "caddy"),
					huh.NewOption("nginx: bring your own certificate", "nginx"),
					huh.NewOption("none: TLS ends elsewhere", "none"),
					huh.NewOption("nginx-host: an nginx already running on this host", "nginx-host")).
				Value(&work.Proxy),
			huh.NewInput().Title("Project name").
				Description("containers are NAME-runtime, NAME-mongo...: a second stack on this host needs its own name").
				Validate(p.check(validProject)).Value(&work.Project),
			huh.NewInput().Title("Runtime host port").Description("the runtime's port on this host (127.0.0.1 only behind a proxy)").
				Validate(p.check(validPort)).Value(&work.HTTPPort),
		}},
		{title: "Kubernetes", hide: func() bool { return work.Database != "external" }, fields: []huh.Field{
			huh.NewConfirm().Title("Also write Kubernetes manifests into k8s/?").Value(&work.K8s),
		}},
		cloudPage(&work),
	}
	if err := p.run(ctx, second); err != nil {
		return err
	}
	work.fillDefaults() // prod's CORS default follows the public URL just entered
	*a = work
	return nil
}

// check adapts a validator to the mode: in accessible mode an empty line
// keeps the default (which Normalize checks later), so it must pass.
func (p prompter) check(v func(string) error) func(string) error {
	if !p.accessible {
		return v
	}
	return func(s string) error {
		if strings.TrimSpace(s) == "" {
			return nil
		}
		return v(s)
	}
}

// retry shows a failed check (its user-safe message only) and asks whether
// to change the answers and check again.
func (p prompter) retry(ctx context.Context, failed error) (bool, error) {
	if u, ok := uerr.As(failed); ok {
		fmt.Fprintf(p.out, "Error: %s\n", u.Msg)
		if u.Hint != "" {
			fmt.Fprintf(p.out, "Hint: %s\n", u.Hint)
		}
	} else {
		return false, nil
	}
	return p.confirm(ctx, "Change the answers and check again?", "Yes", "No")
}

// confirm asks a yes/no question.
func (p prompter) confirm(ctx context.Context, title, yes, no string) (bool, error) {
	ok := false
	err := p.run(ctx, []page{{title: "Confirm", fields: []huh.Field{
		huh.NewConfirm().Title(title).Affirmative(yes).Negative(no).Value(&ok),
	}}})
	return ok, err
}

// secretInput masks what is typed. In accessible mode without a terminal
// nothing is echoed anyway, and huh can only read a password from a tty.
func (p prompter) secretInput() *huh.Input {
	in := huh.NewInput()
	if _, lines := p.in.(*lineReader); !lines {
		in = in.EchoMode(huh.EchoModePassword)
	}
	return in
}

func (p prompter) run(ctx context.Context, pages []page) error {
	if err := ctx.Err(); err != nil {
		return interrupted(err)
	}
	if !p.accessible {
		groups := make([]*huh.Group, 0, len(pages))
		for _, pg := range pages {
			g := huh.NewGroup(pg.fields...).Title(pg.title)
			if pg.hide != nil {
				g = g.WithHideFunc(pg.hide)
			}
			groups = append(groups, g)
		}
		err := huh.NewForm(groups...).WithInput(p.in).WithOutput(p.out).WithShowHelp(true).RunWithContext(ctx)
		switch {
		case ctx.Err() != nil:
			return interrupted(ctx.Err())
		case errors.Is(err, huh.ErrUserAborted), errors.Is(err, huh.ErrTimeout):
			return interrupted(err)
		case err != nil:
			return fmt.Errorf("run form: %w", err)
		}
		return nil
	}
	// huh's own accessible runner ignores hidden groups and cannot be
	// interrupted, so the pages are walked here. The reads block on the
	// input, so they run on their own goroutine and a cancelled context
	// returns at once (the form's values are then never read).
	out := &gatedWriter{w: p.out}
	done := make(chan struct{})
	go func() {
		defer close(done)
		in := p.in
		for _, pg := range pages {
			if pg.hide != nil && pg.hide() {
				continue
			}
			fmt.Fprintf(out, "== %s ==\n", pg.title)
			for _, f := range pg.fields {
				if ctx.Err() != nil {
					return
				}
				f.Init()
				f.Focus()
				_ = f.RunAccessible(out, in)
				fmt.Fprintln(out)
			}
		}
	}()
	select {
	case <-done:
		if err := ctx.Err(); err != nil {
			return interrupted(err)
		}
		return nil
	case <-ctx.Done():
		out.close() // the abandoned prompt must not write into a caller's stream
		return interrupted(ctx.Err())
	}
}

// gatedWriter stops passing writes on once closed.
type gatedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gatedWriter) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(b), nil
	}
	return g.w.Write(b)
}

func (g *gatedWriter) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// lineReader hands out at most one line per Read: huh's accessible prompts
// each wrap the input in a fresh bufio.Scanner, which would otherwise swallow
// the answers meant for the next questions.
type lineReader struct {
	ctx     context.Context
	br      *bufio.Reader
	pending []byte
}

func (r *lineReader) Read(p []byte) (int, error) {
	if len(r.pending) == 0 {
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		line, err := r.br.ReadBytes('\n')
		if len(line) == 0 {
			return 0, err
		}
		r.pending = line
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}
