// Package backup owns the backup archive: one portable file holding every
// session, event and usage record of a store, written from any
// store.Exporter and restored into any store.Importer, so a backup of the
// embedded store restores into MongoDB and back.
//
// The archive is a zip file (readable with standard tools) of four entries,
// written in this order as the records stream out of the store:
//
//	sessions.jsonl  one JSON object per line, by chat id
//	events.jsonl    by chat id, then seq
//	usage.jsonl     in insertion order
//	manifest.json   format, version, source, counts, and per entry the
//	                number of records, bytes and SHA-256
//
// JSON payloads the store keeps opaque (engine state, event data, last
// artifact) are carried as JSON strings holding the exact text, so a restore
// hands back the same bytes. The manifest comes last because only then are
// the counts and checksums known; a reader finds it through the zip's
// central directory. Restore verifies every entry against the manifest (and
// zip's own CRC-32) before it writes anything.
package backup

import (
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
)

// Format names the archive kind in the manifest.
const Format = "mozaiks-backup"

// Version is the archive layout this code writes; it reads versions up to it.
const Version = 1

// Entry names.
const (
	SessionsEntry = "sessions.jsonl"
	EventsEntry   = "events.jsonl"
	UsageEntry    = "usage.jsonl"
	ManifestEntry = "manifest.json"
)

var dataEntries = []string{SessionsEntry, EventsEntry, UsageEntry}

// Manifest describes an archive.
type Manifest struct {
	Format    string       `json:"format"`
	Version   int          `json:"version"`
	CreatedAt time.Time    `json:"created_at"`
	Source    string       `json:"source"` // the store's backend: embedded | mongodb
	Producer  string       `json:"producer,omitempty"`
	Counts    store.Counts `json:"counts"`
	Entries   []EntryInfo  `json:"entries"`
}

// EntryInfo is one data entry's size and checksum.
type EntryInfo struct {
	Name    string `json:"name"`
	Records int64  `json:"records"`
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"` // hex of the uncompressed bytes
}

// Entry finds an entry by name.
func (m Manifest) Entry(name string) (EntryInfo, bool) {
	for _, e := range m.Entries {
		if e.Name == name {
			return e, true
		}
	}
	return EntryInfo{}, false
}

// sessionRec is a line of sessions.jsonl.
type sessionRec struct {
	ChatID          string    `json:"chat_id"`
	AppID           string    `json:"app_id"`
	UserID          string    `json:"user_id"`
	Workflow        string    `json:"workflow"`
	Status          string    `json:"status"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	LastSeq         int64     `json:"last_seq"`
	MessageCount    int64     `json:"message_count"`
	Usage           usageSum  `json:"usage"`
	ClientRequestID string    `json:"client_request_id,omitempty"`
	State           *string   `json:"state,omitempty"`
	PendingKind     string    `json:"pending_kind,omitempty"`
	PendingID       string    `json:"pending_id,omitempty"`
	LastArtifact    *string   `json:"last_artifact,omitempty"`
}

type usageSum struct {
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	TotalTokens      int64   `json:"total_tokens"`
	CostUSD          float64 `json:"cost_usd"`
}

// eventRec is a line of events.jsonl.
type eventRec struct {
	AppID     string    `json:"app_id"`
	ChatID    string    `json:"chat_id"`
	Seq       int64     `json:"seq"`
	Type      string    `json:"type"`
	Agent     string    `json:"agent,omitempty"`
	Data      string    `json:"data"`
	Timestamp time.Time `json:"ts"`
}

// usageRec is a line of usage.jsonl.
type usageRec struct {
	AppID            string    `json:"app_id"`
	UserID           string    `json:"user_id"`
	ChatID           string    `json:"chat_id"`
	Workflow         string    `json:"workflow"`
	Agent            string    `json:"agent"`
	Model            string    `json:"model"`
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	TotalTokens      int64     `json:"total_tokens"`
	CostUSD          float64   `json:"cost_usd"`
	DurationMS       int64     `json:"duration_ms"`
	Timestamp        time.Time `json:"ts"`
}

func text(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func raw(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

func toSessionRec(s store.Session) sessionRec {
	return sessionRec{
		ChatID:       s.ChatID,
		AppID:        s.AppID,
		UserID:       s.UserID,
		Workflow:     s.Workflow,
		Status:       s.Status,
		CreatedAt:    s.CreatedAt.UTC(),
		UpdatedAt:    s.UpdatedAt.UTC(),
		LastSeq:      s.LastSeq,
		MessageCount: s.MessageCount,
		Usage: usageSum{
			PromptTokens:     s.Usage.PromptTokens,
			CompletionTokens: s.Usage.CompletionTokens,
			TotalTokens:      s.Usage.TotalTokens,
			CostUSD:          s.Usage.CostUSD,
		},
		ClientRequestID: s.ClientRequestID,
		State:           text(s.State),
		PendingKind:     s.PendingKind,
		PendingID:       s.PendingID,
		LastArtifact:    text(s.LastArtifact),
	}
}

func (r sessionRec) session() store.Session {
	return store.Session{
		ChatID:       r.ChatID,
		AppID:        r.AppID,
		UserID:       r.UserID,
		Workflow:     r.Workflow,
		Status:       r.Status,
		CreatedAt:    r.CreatedAt.UTC(),
		UpdatedAt:    r.UpdatedAt.UTC(),
		LastSeq:      r.LastSeq,
		MessageCount: r.MessageCount,
		Usage: store.Usage{
			PromptTokens:     r.Usage.PromptTokens,
			CompletionTokens: r.Usage.CompletionTokens,
			TotalTokens:      r.Usage.TotalTokens,
			CostUSD:          r.Usage.CostUSD,
		},
		ClientRequestID: r.ClientRequestID,
		State:           raw(r.State),
		PendingKind:     r.PendingKind,
		PendingID:       r.PendingID,
		LastArtifact:    raw(r.LastArtifact),
	}
}

func toEventRec(e store.AppEvent) eventRec {
	return eventRec{AppID: e.AppID, ChatID: e.ChatID, Seq: e.Seq, Type: e.Type, Agent: e.Agent, Data: string(e.Data),
		Timestamp: e.Timestamp.UTC()}
}

func (r eventRec) event() store.AppEvent {
	return store.AppEvent{AppID: r.AppID, Event: store.Event{ChatID: r.ChatID, Seq: r.Seq, Type: r.Type, Agent: r.Agent,
		Data: []byte(r.Data), Timestamp: r.Timestamp.UTC()}}
}

func toUsageRec(u store.UsageRecord) usageRec {
	return usageRec{
		AppID:            u.AppID,
		UserID:           u.UserID,
		ChatID:           u.ChatID,
		Workflow:         u.Workflow,
		Agent:            u.Agent,
		Model:            u.Model,
		PromptTokens:     u.PromptTokens,
		CompletionTokens: u.CompletionTokens,
		TotalTokens:      u.TotalTokens,
		CostUSD:          u.CostUSD,
		DurationMS:       u.Duration.Milliseconds(),
		Timestamp:        u.Timestamp.UTC(),
	}
}

func (r usageRec) usage() store.UsageRecord {
	return store.UsageRecord{
		AppID:            r.AppID,
		UserID:           r.UserID,
		ChatID:           r.ChatID,
		Workflow:         r.Workflow,
		Agent:            r.Agent,
		Model:            r.Model,
		PromptTokens:     r.PromptTokens,
		CompletionTokens: r.CompletionTokens,
		TotalTokens:      r.TotalTokens,
		CostUSD:          r.CostUSD,
		Duration:         time.Duration(r.DurationMS) * time.Millisecond,
		Timestamp:        r.Timestamp.UTC(),
	}
}
