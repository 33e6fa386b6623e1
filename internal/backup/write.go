package backup

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/mozaiks/mozaiks/internal/store"
)

// Progress is told how far a long step has come; the CLI draws it as a bar
// on a terminal. Start begins a step of total records (0: unknown).
type Progress interface {
	Start(label string, total int64)
	Add(n int64)
	Finish()
}

type noProgress struct{}

func (noProgress) Start(string, int64) {}
func (noProgress) Add(int64)           {}
func (noProgress) Finish()             {}

// WriteOptions tunes Write.
type WriteOptions struct {
	Source   string // the store's backend name, for the manifest
	Producer string // e.g. "mozaiks 1.2.3"
	Progress Progress
	Now      func() time.Time
}

// Write streams everything src holds into w as an archive and returns its
// manifest. w is written sequentially (a pipe or stdout will do).
func Write(ctx context.Context, w io.Writer, src store.Exporter, opts WriteOptions) (Manifest, error) {
	if opts.Progress == nil {
		opts.Progress = noProgress{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := Manifest{Format: Format, Version: Version, CreatedAt: opts.Now().UTC().Truncate(time.Millisecond),
		Source: opts.Source, Producer: opts.Producer}
	total, err := src.Count(ctx)
	if err != nil {
		return Manifest{}, fmt.Errorf("count records: %w", err)
	}
	zw := zip.NewWriter(w)
	// klauspost's deflate at its fastest level: the archive is dominated by
	// JSON text, which compresses well even so, and backup speed is the point.
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, flate.BestSpeed)
	})
	sw := &sectionWriter{ctx: ctx, zw: zw, m: &m, created: m.CreatedAt, progress: opts.Progress}
	opts.Progress.Start("backup", total.Total())
	if err := src.Export(ctx, sw); err != nil {
		return Manifest{}, err
	}
	// Every data entry exists, even when empty: opening the last opens
	// any skipped before it.
	if err := sw.open(dataEntries[len(dataEntries)-1]); err != nil {
		return Manifest{}, err
	}
	if err := sw.close(); err != nil {
		return Manifest{}, err
	}
	opts.Progress.Finish()
	mw, err := zw.CreateHeader(&zip.FileHeader{Name: ManifestEntry, Method: zip.Deflate, Modified: m.CreatedAt})
	if err != nil {
		return Manifest{}, fmt.Errorf("write manifest: %w", err)
	}
	enc := json.NewEncoder(mw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return Manifest{}, fmt.Errorf("write manifest: %w", err)
	}
	if err := zw.Close(); err != nil {
		return Manifest{}, fmt.Errorf("finish archive: %w", err)
	}
	return m, nil
}

// sectionWriter is the store.ExportSink that writes records to the entry of
// their kind, opening the entries in order as the kinds arrive.
type sectionWriter struct {
	ctx      context.Context
	zw       *zip.Writer
	m        *Manifest
	created  time.Time
	progress Progress

	cur     int // index in dataEntries of the open entry, -1 before the first
	started bool
	buf     *bufio.Writer
	enc     *json.Encoder
	sum     hash.Hash
	info    EntryInfo
	counted int64 // records since the last progress report
	closeFn func() error
}

func (s *sectionWriter) Session(x store.Session) error {
	return s.put(SessionsEntry, toSessionRec(x))
}

func (s *sectionWriter) Event(e store.AppEvent) error {
	return s.put(EventsEntry, toEventRec(e))
}

func (s *sectionWriter) Usage(u store.UsageRecord) error {
	return s.put(UsageEntry, toUsageRec(u))
}

func (s *sectionWriter) put(entry string, rec any) error {
	if err := s.open(entry); err != nil {
		return err
	}
	if err := s.enc.Encode(rec); err != nil {
		return fmt.Errorf("write %s: %w", entry, err)
	}
	s.info.Records++
	if s.counted++; s.counted == 1024 {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		s.progress.Add(s.counted)
		s.counted = 0
	}
	return nil
}

// open makes entry the current one, first opening (empty) any entry before
// it that was skipped. Going back to an earlier entry is a bug in the exporter.
func (s *sectionWriter) open(entry string) error {
	want := -1
	for i, n := range dataEntries {
		if n == entry {
			want = i
		}
	}
	if s.started && dataEntries[s.cur] == entry {
		return nil
	}
	if s.started && want < s.cur {
		return fmt.Errorf("exporter sent %s after %s", entry, dataEntries[s.cur])
	}
	next := 0
	if s.started {
		next = s.cur + 1
	}
	for i := next; i <= want; i++ {
		if err := s.close(); err != nil {
			return err
		}
		w, err := s.zw.CreateHeader(&zip.FileHeader{Name: dataEntries[i], Method: zip.Deflate, Modified: s.created})
		if err != nil {
			return fmt.Errorf("write %s: %w", dataEntries[i], err)
		}
		s.sum = sha256.New()
		cw := &countingWriter{w: io.MultiWriter(w, s.sum)}
		s.buf = bufio.NewWriterSize(cw, 256<<10)
		s.enc = json.NewEncoder(s.buf)
		s.enc.SetEscapeHTML(false)
		s.info = EntryInfo{Name: dataEntries[i]}
		s.cur, s.started = i, true
		s.closeFn = func() error {
			if err := s.buf.Flush(); err != nil {
				return err
			}
			s.info.Bytes = cw.n
			s.info.SHA256 = hex.EncodeToString(s.sum.Sum(nil))
			s.m.Entries = append(s.m.Entries, s.info)
			switch s.info.Name {
			case SessionsEntry:
				s.m.Counts.Sessions = s.info.Records
			case EventsEntry:
				s.m.Counts.Events = s.info.Records
			case UsageEntry:
				s.m.Counts.Usage = s.info.Records
			}
			return nil
		}
	}
	return nil
}

func (s *sectionWriter) close() error {
	s.progress.Add(s.counted)
	s.counted = 0
	if s.closeFn == nil {
		return nil
	}
	fn := s.closeFn
	s.closeFn = nil
	if err := fn(); err != nil {
		return fmt.Errorf("write %s: %w", s.info.Name, err)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
