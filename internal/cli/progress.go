package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
)

// barProgress draws backup/restore progress (backup.Progress) as a bar on a
// terminal; commands use it only when stderr is one.
type barProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func newBarProgress(w io.Writer) *barProgress { return &barProgress{w: w} }

func (p *barProgress) Start(label string, total int64) {
	if total <= 0 {
		total = -1 // unknown: a spinner
	}
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-8s", label)),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("records"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
	)
}

func (p *barProgress) Add(n int64) {
	if p.bar != nil && n > 0 {
		_ = p.bar.Add64(n)
	}
}

func (p *barProgress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}

func isTTY(f *os.File) bool {
	if _, set := os.LookupEnv("NO_COLOR"); set {
		// NO_COLOR asks for plain output; a redrawn bar is not plain.
		return false
	}
	return isatty.IsTerminal(f.Fd())
}
