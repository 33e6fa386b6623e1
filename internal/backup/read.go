package backup

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mozaiks/mozaiks/internal/store"
)

// ErrCorrupt: the archive is damaged, truncated, altered or not an archive
// of this kind. Nothing is restored from such an archive.
var ErrCorrupt = errors.New("backup archive is corrupt")

// ErrVersion: the archive was written by a newer layout than this code reads.
var ErrVersion = errors.New("backup archive version not supported")

// Archive is an archive opened for reading.
type Archive struct {
	Manifest Manifest
	files    map[string]*zip.File
	closer   io.Closer
}

// OpenFile opens the archive at path and reads its manifest.
func OpenFile(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	a, err := Open(f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	a.closer = f
	return a, nil
}

// Open reads the manifest of the archive in r and checks it names every
// data entry.
func Open(r io.ReaderAt, size int64) (*Archive, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: not a readable zip archive: %v", ErrCorrupt, err)
	}
	a := &Archive{files: map[string]*zip.File{}}
	for _, f := range zr.File {
		a.files[f.Name] = f
	}
	mf, ok := a.files[ManifestEntry]
	if !ok {
		return nil, fmt.Errorf("%w: no %s (not a mozaiks backup, or cut short)", ErrCorrupt, ManifestEntry)
	}
	rc, err := mf.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, ManifestEntry, err)
	}
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, ManifestEntry, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a.Manifest); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, ManifestEntry, err)
	}
	m := a.Manifest
	if m.Format != Format {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrCorrupt, m.Format, Format)
	}
	if m.Version < 1 || m.Version > Version {
		return nil, fmt.Errorf("%w: archive version %d, this mozaiks reads up to %d", ErrVersion, m.Version, Version)
	}
	for _, name := range dataEntries {
		if _, ok := m.Entry(name); !ok {
			return nil, fmt.Errorf("%w: manifest lacks %s", ErrCorrupt, name)
		}
		if _, ok := a.files[name]; !ok {
			return nil, fmt.Errorf("%w: archive lacks %s", ErrCorrupt, name)
		}
	}
	return a, nil
}

// Close closes the file OpenFile opened.
func (a *Archive) Close() error {
	if a.closer == nil {
		return nil
	}
	return a.closer.Close()
}

// Verify reads every data entry and checks it against the manifest: records,
// bytes, SHA-256 (and zip's CRC-32), that every line is a record of its kind,
// and that every event and usage record belongs to a session in the archive.
func (a *Archive) Verify(ctx context.Context, p Progress) error {
	if p == nil {
		p = noProgress{}
	}
	p.Start("verify", a.Manifest.Counts.Total())
	defer p.Finish()
	chats := map[string]struct{}{}
	type seqAt struct {
		chat string
		seq  int64
	}
	var last seqAt
	checks := map[string]func([]byte) error{
		SessionsEntry: func(line []byte) error {
			var r sessionRec
			if err := strictDecode(line, &r); err != nil {
				return err
			}
			if r.ChatID == "" || r.AppID == "" {
				return errors.New("session without chat_id or app_id")
			}
			if _, dup := chats[r.ChatID]; dup {
				return fmt.Errorf("session %s twice", r.ChatID)
			}
			chats[r.ChatID] = struct{}{}
			return nil
		},
		EventsEntry: func(line []byte) error {
			var r eventRec
			if err := strictDecode(line, &r); err != nil {
				return err
			}
			if _, ok := chats[r.ChatID]; !ok {
				return fmt.Errorf("event %s/%d of no session in the archive", r.ChatID, r.Seq)
			}
			if r.ChatID == last.chat && r.Seq <= last.seq {
				return fmt.Errorf("event %s/%d out of order", r.ChatID, r.Seq)
			}
			last = seqAt{r.ChatID, r.Seq}
			return nil
		},
		UsageEntry: func(line []byte) error {
			var r usageRec
			if err := strictDecode(line, &r); err != nil {
				return err
			}
			if _, ok := chats[r.ChatID]; !ok {
				return fmt.Errorf("usage record of %s, no session in the archive", r.ChatID)
			}
			return nil
		},
	}
	for _, name := range dataEntries {
		if err := a.scan(ctx, name, p, checks[name]); err != nil {
			return err
		}
	}
	return nil
}

func strictDecode(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// scan calls fn with every line of entry name, then checks the entry against
// the manifest. Any failure is ErrCorrupt, except fn's own errors that are
// not decoding errors and ctx's.
func (a *Archive) scan(ctx context.Context, name string, p Progress, fn func([]byte) error) error {
	want, _ := a.Manifest.Entry(name)
	rc, err := a.files[name].Open()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	defer rc.Close()
	sum := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(rc, sum), 256<<10)
	var got EntryInfo
	for {
		line, err := br.ReadBytes('\n')
		got.Bytes += int64(len(line))
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				return fmt.Errorf("%w: %s: last line cut short", ErrCorrupt, name)
			}
			got.Records++
			if got.Records > want.Records {
				return fmt.Errorf("%w: %s holds more than the %d records its manifest says", ErrCorrupt, name, want.Records)
			}
			if err := fn(line); err != nil {
				var ferr *fatalError
				if errors.As(err, &ferr) {
					return ferr.err
				}
				return fmt.Errorf("%w: %s record %d: %v", ErrCorrupt, name, got.Records, err)
			}
			if got.Records%1024 == 0 {
				p.Add(1024)
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
		}
	}
	p.Add(got.Records % 1024)
	got.SHA256 = hex.EncodeToString(sum.Sum(nil))
	switch {
	case got.Records != want.Records:
		return fmt.Errorf("%w: %s holds %d records, its manifest says %d", ErrCorrupt, name, got.Records, want.Records)
	case got.Bytes != want.Bytes:
		return fmt.Errorf("%w: %s holds %d bytes, its manifest says %d", ErrCorrupt, name, got.Bytes, want.Bytes)
	case got.SHA256 != want.SHA256:
		return fmt.Errorf("%w: %s checksum mismatch (sha256 %s, manifest says %s)", ErrCorrupt, name, got.SHA256, want.SHA256)
	}
	return nil
}

// fatalError carries an error out of scan as it is (an import failure is
// not a corrupt archive).
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

// RestoreOptions tunes Restore.
type RestoreOptions struct {
	// Force clears a target that holds data; without it such a target is
	// refused with store.ErrNotEmpty.
	Force bool
	// BatchSize is how many records go into one import call (default 1000).
	BatchSize int
	Progress  Progress
}

// NotEmptyError says what a refused target holds.
type NotEmptyError struct{ Counts store.Counts }

func (e *NotEmptyError) Error() string {
	return fmt.Sprintf("target store holds %d sessions, %d events, %d usage records", e.Counts.Sessions,
		e.Counts.Events, e.Counts.Usage)
}

func (e *NotEmptyError) Unwrap() error { return store.ErrNotEmpty }

// Restore verifies the archive, then writes it into dst, which must be
// empty unless opts.Force (then it is cleared first). It returns what it wrote.
func (a *Archive) Restore(ctx context.Context, dst store.Importer, opts RestoreOptions) (store.Counts, error) {
	if opts.Progress == nil {
		opts.Progress = noProgress{}
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	if err := a.Verify(ctx, opts.Progress); err != nil {
		return store.Counts{}, err
	}
	have, err := dst.Count(ctx)
	if err != nil {
		return store.Counts{}, fmt.Errorf("count target records: %w", err)
	}
	if have.Total() > 0 {
		if !opts.Force {
			return store.Counts{}, &NotEmptyError{Counts: have}
		}
		if err := dst.Clear(ctx); err != nil {
			return store.Counts{}, fmt.Errorf("clear target: %w", err)
		}
	}
	p := opts.Progress
	p.Start("restore", a.Manifest.Counts.Total())
	defer p.Finish()
	var done store.Counts
	fail := func(err error) error { return &fatalError{err} }

	var sessions []store.Session
	if err := a.scan(ctx, SessionsEntry, noProgress{}, func(line []byte) error {
		var r sessionRec
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		if sessions = append(sessions, r.session()); len(sessions) == opts.BatchSize {
			if err := dst.ImportSessions(ctx, sessions); err != nil {
				return fail(fmt.Errorf("import sessions: %w", err))
			}
			p.Add(int64(len(sessions)))
			done.Sessions += int64(len(sessions))
			sessions = sessions[:0]
		}
		return nil
	}); err != nil {
		return done, err
	}
	if err := dst.ImportSessions(ctx, sessions); err != nil {
		return done, fmt.Errorf("import sessions: %w", err)
	}
	p.Add(int64(len(sessions)))
	done.Sessions += int64(len(sessions))

	var events []store.AppEvent
	if err := a.scan(ctx, EventsEntry, noProgress{}, func(line []byte) error {
		var r eventRec
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		if events = append(events, r.event()); len(events) == opts.BatchSize {
			if err := dst.ImportEvents(ctx, events); err != nil {
				return fail(fmt.Errorf("import events: %w", err))
			}
			p.Add(int64(len(events)))
			done.Events += int64(len(events))
			events = events[:0]
		}
		return nil
	}); err != nil {
		return done, err
	}
	if err := dst.ImportEvents(ctx, events); err != nil {
		return done, fmt.Errorf("import events: %w", err)
	}
	p.Add(int64(len(events)))
	done.Events += int64(len(events))

	var usage []store.UsageRecord
	if err := a.scan(ctx, UsageEntry, noProgress{}, func(line []byte) error {
		var r usageRec
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		if usage = append(usage, r.usage()); len(usage) == opts.BatchSize {
			if err := dst.ImportUsage(ctx, usage); err != nil {
				return fail(fmt.Errorf("import usage: %w", err))
			}
			p.Add(int64(len(usage)))
			done.Usage += int64(len(usage))
			usage = usage[:0]
		}
		return nil
	}); err != nil {
		return done, err
	}
	if err := dst.ImportUsage(ctx, usage); err != nil {
		return done, fmt.Errorf("import usage: %w", err)
	}
	p.Add(int64(len(usage)))
	done.Usage += int64(len(usage))
	return done, nil
}
