package initwiz

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/huh"
	"github.com/charmbracelet/x/term"
)

// prompter asks the operator. The full-screen form needs a terminal; the
// accessible mode (screen readers, ACCESSIBLE=1, tests) reads lines.
type prompter struct {
	in         io.Reader
	out        io.Writer
	accessible bool
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
				Validate(validMongoURI).Value(&work.MongoURI),
		}},
	}
	if err := p.run(ctx, first); err != nil {
		return err
	}
	work.fillDefaults()
	second := []page{
		{title: "LLM", fields: []huh.Field{
			huh.NewInput().Title("OpenAI-compatible base URL").Description("leave empty for api.openai.com; e.g. http://vllm:8000/v1").
				Validate(validBaseURL).Value(&work.OpenAIBaseURL),
			p.secretInput().Title("API key").
				Validate(func(s string) error {
					if strings.TrimSpace(s) == "" && strings.TrimSpace(work.OpenAIBaseURL) == "" {
						return errors.New("an API key is required for api.openai.com")
					}
					return nil
				}).Value(&work.OpenAIAPIKey),
			huh.NewInput().Title("Default model").Validate(validModel).Value(&work.Model),
		}},
		{title: "Network", fields: []huh.Field{
			huh.NewInput().Title("Public URL").Description("how browsers reach the runtime, e.g. https://agents.example.com").
				Validate(validPublicURL).Value(&work.PublicURL),
			huh.NewInput().Title("CORS origins").Description("comma list of the origins your frontends are served from").
				Validate(func(s string) error { _, err := normalizeOrigins(s, work.Deployment); return err }).
				Value(&work.CORSOrigins),
			huh.NewInput().Title("Default app id").Validate(validAppID).Value(&work.AppID),
			huh.NewSelect[string]().Title("Reverse proxy (in docker-compose.prod.yml)").
				Options(huh.NewOption("caddy: automatic TLS", "caddy"),
					huh.NewOption("nginx: bring your own certificate", "nginx"),
					huh.NewOption("none: TLS ends elsewhere", "none")).
				Value(&work.Proxy),
		}},
		{title: "Kubernetes", hide: func() bool { return work.Database != "external" }, fields: []huh.Field{
			huh.NewConfirm().Title("Also write Kubernetes manifests into k8s/?").Value(&work.K8s),
		}},
	}
	if err := p.run(ctx, second); err != nil {
		return err
	}
	*a = work
	return nil
}

// confirm asks before existing files are overwritten.
func (p prompter) confirm(ctx context.Context, title string) (bool, error) {
	ok := false
	err := p.run(ctx, []page{{title: "Confirm", fields: []huh.Field{
		huh.NewConfirm().Title(title).Affirmative("Write").Negative("Cancel").Value(&ok),
	}}})
	return ok, err
}

// secretInput masks what is typed. In accessible mode without a terminal
// nothing is echoed anyway, and huh can only read a password from a tty.
func (p prompter) secretInput() *huh.Input {
	in := huh.NewInput()
	if !p.accessible || isTerminal(p.in) {
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
	done := make(chan struct{})
	go func() {
		defer close(done)
		in := p.in
		if !isTerminal(in) {
			in = &lineReader{ctx: ctx, br: bufio.NewReader(in)}
		}
		for _, pg := range pages {
			if pg.hide != nil && pg.hide() {
				continue
			}
			fmt.Fprintf(p.out, "== %s ==\n", pg.title)
			for _, f := range pg.fields {
				if ctx.Err() != nil {
					return
				}
				f.Init()
				f.Focus()
				_ = f.RunAccessible(p.out, in)
				fmt.Fprintln(p.out)
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
		return interrupted(ctx.Err())
	}
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
