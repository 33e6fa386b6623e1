package mongo_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

func withRequest(chat, req string) store.Session {
	return store.Session{ChatID: chat, AppID: "a", UserID: "u", Workflow: "w", ClientRequestID: req}
}

// Past the window, the same client_request_id starts a new session.
func TestClientRequestWindowExpires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openURI(t, ferret.DB(t), mongoOptions())
	if _, created, err := s.CreateSession(ctx, withRequest("c1", "r")); err != nil || !created {
		t.Fatalf("first: created=%v %v", created, err)
	}
	requests := s.Client().Database(s.Database()).Collection(mongo.RequestsCollection)
	old := store.Now().Add(-store.IdempotencyWindow - time.Second)
	if res, err := requests.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "created_at", Value: old}}}}); err != nil || res.MatchedCount != 1 {
		t.Fatalf("age the claim: %+v %v", res, err)
	}
	got, created, err := s.CreateSession(ctx, withRequest("c2", "r"))
	if err != nil || !created || got.ChatID != "c2" {
		t.Fatalf("after the window: chat=%s created=%v %v, want a new c2", got.ChatID, created, err)
	}
	// And the fresh claim now guards c2.
	got, created, err = s.CreateSession(ctx, withRequest("c3", "r"))
	if err != nil || created || got.ChatID != "c2" {
		t.Fatalf("retry: chat=%s created=%v %v, want c2", got.ChatID, created, err)
	}
}

// A claim whose session never appeared (its creator died between the two
// writes) is taken over instead of blocking the retry.
func TestClientRequestOrphanTakenOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openURI(t, ferret.DB(t), mongoOptions())
	requests := s.Client().Database(s.Database()).Collection(mongo.RequestsCollection)
	if _, err := requests.InsertOne(ctx, bson.D{{Key: "_id", Value: `["a","u","r"]`}, {Key: "chat_id", Value: "ghost"}, {Key: "created_at", Value: store.Now()}}); err != nil {
		t.Fatal(err)
	}
	got, created, err := s.CreateSession(ctx, withRequest("c1", "r"))
	if err != nil || !created || got.ChatID != "c1" {
		t.Fatalf("orphaned claim: chat=%s created=%v %v, want a new c1", got.ChatID, created, err)
	}
}

// A chat id taken in another app fails and frees the claim, so the
// client's retry with a fresh chat id succeeds.
func TestClientRequestConflictReleasesClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openURI(t, ferret.DB(t), mongoOptions())
	if _, _, err := s.CreateSession(ctx, store.Session{ChatID: "taken", AppID: "other", UserID: "u", Workflow: "w"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateSession(ctx, withRequest("taken", "r")); err == nil {
		t.Fatal("chat id of another app accepted")
	}
	got, created, err := s.CreateSession(ctx, withRequest("fresh", "r"))
	if err != nil || !created || got.ChatID != "fresh" {
		t.Fatalf("retry: chat=%s created=%v %v, want a new fresh", got.ChatID, created, err)
	}
}
