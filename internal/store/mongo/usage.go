package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mozaiks/mozaiks/internal/store"
)

// RecordUsage implements store.Store: totals by $inc on the session, then
// one UsageEvents document.
func (s *Store) RecordUsage(ctx context.Context, u store.UsageRecord) error {
	if u.Timestamp.IsZero() {
		u.Timestamp = store.Now()
	}
	if err := s.ensureIndexed(ctx); err != nil {
		return err
	}
	res, err := s.sessions.UpdateOne(ctx, bson.D{{Key: "_id", Value: u.ChatID}, {Key: fApp, Value: u.AppID}},
		bson.D{{Key: "$inc", Value: bson.D{
			{Key: "usage.prompt_tokens", Value: u.PromptTokens},
			{Key: "usage.completion_tokens", Value: u.CompletionTokens},
			{Key: "usage.total_tokens", Value: u.TotalTokens},
			{Key: "usage.cost_usd", Value: u.CostUSD},
		}}})
	if err != nil {
		return wrap("add usage to session", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("usage for session %s: %w", u.ChatID, store.ErrNotFound)
	}
	_, err = s.usage.InsertOne(ctx, usageEventDoc{
		AppID: u.AppID, UserID: u.UserID, ChatID: u.ChatID, Workflow: u.Workflow, Agent: u.Agent, Model: u.Model,
		PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens,
		CostUSD: u.CostUSD, DurationMS: u.Duration.Milliseconds(), Timestamp: u.Timestamp.UTC().Truncate(time.Millisecond),
	})
	return wrap("insert usage event", err)
}
