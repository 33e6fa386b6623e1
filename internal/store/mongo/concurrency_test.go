package mongo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// FerretDB v1 writes whole documents back, so on it alone these lose
// updates (they did: every round failed). The store relies on MongoDB's
// atomic single-document updates, which the test server's front provides
// (internal/testutil/ferret), across processes as well.

func TestLeaseOneWinnerUnderRace(t *testing.T) {
	t.Parallel()
	s := openURI(t, ferret.DB(t), mongoOptions())
	for round := range 5 {
		chat := fmt.Sprint("c", round)
		newChat(t, s, "a", chat)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.AcquireLease(context.Background(), "a", chat, fmt.Sprint("runner-", w), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d runners acquired one lease", round, n)
		}
	}
}

func TestConcurrentWritersToOneSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openURI(t, ferret.DB(t), mongoOptions())
	newChat(t, s, "a", "c")
	const n = 30
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for range n {
			if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "x"}, true); err != nil {
				t.Error(err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for k := 1; k <= n; k++ {
			if err := s.UpdateSession(ctx, "a", "c", store.SessionUpdate{State: json.RawMessage(fmt.Sprintf(`{"i":%d}`, k))}); err != nil {
				t.Error(err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range n {
			if err := s.RecordUsage(ctx, store.UsageRecord{AppID: "a", ChatID: "c", PromptTokens: 2, TotalTokens: 3, CostUSD: 0.5}); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	got, err := s.GetSession(ctx, "a", "c")
	if err != nil {
		t.Fatal(err)
	}
	want := store.Usage{PromptTokens: 2 * n, TotalTokens: 3 * n, CostUSD: 0.5 * n}
	if string(got.State) != fmt.Sprintf(`{"i":%d}`, n) || got.LastSeq != n || got.MessageCount != n || got.Usage != want {
		t.Fatalf("after concurrent writers: state %s last_seq %d messages %d usage %+v; want {\"i\":%d} %d %d %+v",
			got.State, got.LastSeq, got.MessageCount, got.Usage, n, n, n, want)
	}
}
