package store

import (
	"context"
	"errors"
)

// Backup and restore see a store through two optional interfaces beside
// Store, so the runtime's contract stays as it is: an Exporter streams
// everything a store holds, an Importer takes it back verbatim (seqs,
// timestamps, counters and totals as they were, not recomputed). Leases,
// and the Mongo store's short-lived client_request_id claims, are not
// carried: they mean nothing once the process that took them is gone.

// AppEvent is an event with the app it belongs to (the embedded store keeps
// app_id on the session only; the Mongo store on every event).
type AppEvent struct {
	AppID string
	Event
}

// ExportSink receives a store's records. Export calls Session for every
// session, then Event for every event (by chat id, then seq), then Usage for
// every usage record, in one goroutine.
type ExportSink interface {
	Session(Session) error
	Event(AppEvent) error
	Usage(UsageRecord) error
}

// Counts is how many records of each kind.
type Counts struct {
	Sessions int64 `json:"sessions"`
	Events   int64 `json:"events"`
	Usage    int64 `json:"usage"`
}

// Exporter is a store that can stream its whole content.
type Exporter interface {
	// Count says how many records Export will roughly send (for progress).
	Count(ctx context.Context) (Counts, error)
	// Export sends every record to sink, stopping at the first error.
	Export(ctx context.Context, sink ExportSink) error
}

// Importer is a store that can take records verbatim.
type Importer interface {
	// Count reports what the store holds; all zero means empty.
	Count(ctx context.Context) (Counts, error)
	// Clear deletes every session, event and usage record.
	Clear(ctx context.Context) error
	// ImportSessions, ImportEvents and ImportUsage insert records as they
	// are. Sessions come before their events and usage.
	ImportSessions(ctx context.Context, s []Session) error
	ImportEvents(ctx context.Context, e []AppEvent) error
	ImportUsage(ctx context.Context, u []UsageRecord) error
}

// ErrNotEmpty: a restore target already holds data.
var ErrNotEmpty = errors.New("store not empty")

// Total is the number of records of all kinds.
func (c Counts) Total() int64 { return c.Sessions + c.Events + c.Usage }
