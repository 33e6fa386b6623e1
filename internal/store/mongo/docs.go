package mongo

import (
	"encoding/json"
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
)

// sessionDoc is a ChatSessions document.
type sessionDoc struct {
	ChatID          string    `bson:"_id"`
	AppID           string    `bson:"app_id"`
	UserID          string    `bson:"user_id"`
	Workflow        string    `bson:"workflow_name"`
	Status          string    `bson:"status"`
	CreatedAt       time.Time `bson:"created_at"`
	UpdatedAt       time.Time `bson:"last_updated_at"`
	LastSeq         int64     `bson:"last_sequence"`
	MessageCount    int64     `bson:"message_count"`
	Usage           usageDoc  `bson:"usage"`
	ClientRequestID string    `bson:"client_request_id"`
	State           *string   `bson:"engine_state,omitempty"`
	PendingKind     string    `bson:"pending_kind"`
	PendingID       string    `bson:"pending_id"`
	LastArtifact    *string   `bson:"last_artifact,omitempty"`
	LeaseOwner      string    `bson:"lease_owner"`
	LeaseUntil      time.Time `bson:"lease_until"`
}

type usageDoc struct {
	PromptTokens     int64   `bson:"prompt_tokens"`
	CompletionTokens int64   `bson:"completion_tokens"`
	TotalTokens      int64   `bson:"total_tokens"`
	CostUSD          float64 `bson:"cost_usd"`
}

// Field names used in filters and updates.
const (
	fApp       = "app_id"
	fUser      = "user_id"
	fWorkflow  = "workflow_name"
	fStatus    = "status"
	fCreated   = "created_at"
	fUpdated   = "last_updated_at"
	fLastSeq   = "last_sequence"
	fMessages  = "message_count"
	fState     = "engine_state"
	fPendKind  = "pending_kind"
	fPendID    = "pending_id"
	fArtifact  = "last_artifact"
	fLeaseOwn  = "lease_owner"
	fLeaseTill = "lease_until"
)

// noLease is lease_until of a free lease: the epoch, not the zero time.Time,
// which BSON dates cannot hold faithfully.
var noLease = time.UnixMilli(0).UTC()

func toSessionDoc(s store.Session) sessionDoc {
	return sessionDoc{
		ChatID: s.ChatID, AppID: s.AppID, UserID: s.UserID, Workflow: s.Workflow, Status: s.Status,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, LastSeq: s.LastSeq, MessageCount: s.MessageCount,
		Usage: usageDoc{
			PromptTokens: s.Usage.PromptTokens, CompletionTokens: s.Usage.CompletionTokens,
			TotalTokens: s.Usage.TotalTokens, CostUSD: s.Usage.CostUSD,
		},
		ClientRequestID: s.ClientRequestID,
		State:           jsonText(s.State),
		PendingKind:     s.PendingKind,
		PendingID:       s.PendingID,
		LastArtifact:    jsonText(s.LastArtifact),
		LeaseUntil:      noLease,
	}
}

func (d sessionDoc) session() store.Session {
	return store.Session{
		ChatID: d.ChatID, AppID: d.AppID, UserID: d.UserID, Workflow: d.Workflow, Status: d.Status,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(), LastSeq: d.LastSeq, MessageCount: d.MessageCount,
		Usage: store.Usage{
			PromptTokens: d.Usage.PromptTokens, CompletionTokens: d.Usage.CompletionTokens,
			TotalTokens: d.Usage.TotalTokens, CostUSD: d.Usage.CostUSD,
		},
		ClientRequestID: d.ClientRequestID,
		State:           rawJSON(d.State),
		PendingKind:     d.PendingKind,
		PendingID:       d.PendingID,
		LastArtifact:    rawJSON(d.LastArtifact),
	}
}

// eventDoc is a ChatEvents document. app_id is kept on every event so
// reads are scoped by app without a join (FerretDB has no $lookup).
type eventDoc struct {
	ChatID    string    `bson:"chat_id"`
	AppID     string    `bson:"app_id"`
	Seq       int64     `bson:"seq"`
	Type      string    `bson:"type"`
	Agent     string    `bson:"agent"`
	Data      string    `bson:"data"`
	Timestamp time.Time `bson:"timestamp"`
}

func (d eventDoc) event() store.Event {
	return store.Event{ChatID: d.ChatID, Seq: d.Seq, Type: d.Type, Agent: d.Agent,
		Data: json.RawMessage(d.Data), Timestamp: d.Timestamp.UTC()}
}

// usageEventDoc is a UsageEvents document.
type usageEventDoc struct {
	AppID            string    `bson:"app_id"`
	UserID           string    `bson:"user_id"`
	ChatID           string    `bson:"chat_id"`
	Workflow         string    `bson:"workflow"`
	Agent            string    `bson:"agent"`
	Model            string    `bson:"model"`
	PromptTokens     int64     `bson:"prompt_tokens"`
	CompletionTokens int64     `bson:"completion_tokens"`
	TotalTokens      int64     `bson:"total_tokens"`
	CostUSD          float64   `bson:"cost_usd"`
	DurationMS       int64     `bson:"duration_ms"`
	Timestamp        time.Time `bson:"timestamp"`
}

// requestDoc is a ClientRequests document: who first used a
// client_request_id, for which chat, and when.
type requestDoc struct {
	Key       string    `bson:"_id"`
	ChatID    string    `bson:"chat_id"`
	CreatedAt time.Time `bson:"created_at"`
}

func jsonText(b json.RawMessage) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func rawJSON(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}
