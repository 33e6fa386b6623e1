package chat

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

// A socket that subscribes while the chat's writer goes idle (and forgets
// the room) still gets the frames of the next run: a room looked up just
// before it was forgotten is never the one a subscriber, message or job
// lands in. Many chats, each opened and then subscribed to and written to
// at once.
func TestSubscribeWhileTheRoomIsForgotten(t *testing.T) {
	g := newRig(t, nil)
	g.llm.SetResponder(func(r llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: "answer"} })
	const chats = 60
	var wg sync.WaitGroup
	errs := make(chan error, chats)
	for i := range chats {
		wg.Go(func() {
			id := fmt.Sprint("race", i)
			g.open("assistant", id) // stores the greeting; the writer then goes idle
			sub := g.m.Subscribe("app", id, 0)
			defer g.m.Unsubscribe(sub)
			if _, err := g.m.Submit(context.Background(), Submission{AppID: "app", ChatID: id, UserID: "u1", Text: "hi"}); err != nil {
				errs <- err
				return
			}
			deadline := time.After(10 * time.Second)
			for {
				select {
				case <-sub.Ready:
					for _, f := range sub.Take(nil) {
						if f.Type == "chat.text" && strings.Contains(string(f.Bytes), `"answer"`) {
							return
						}
					}
				case <-deadline:
					errs <- fmt.Errorf("chat %s: the subscriber never got the answer", id)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The events a run stores together (store.Batcher) reach a subscriber with
// one notification after the last, not one each: a socket writes them in
// one go (ws sendNow) instead of one write and one client wake-up per frame.
// Every frame still arrives.
func TestBatchNotifiesOnce(t *testing.T) {
	g := newRig(t, nil)
	g.llm.SetResponder(func(r llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: "answer"} })
	g.open("assistant", "quiet")
	var mu sync.Mutex
	notified := 0
	sub := g.m.SubscribeNotify("app", "quiet", 0, func() {
		mu.Lock()
		notified++
		mu.Unlock()
	})
	defer g.m.Unsubscribe(sub)
	g.submit("quiet", "hi")
	g.settled("quiet")
	frames := sub.Take(nil)
	var types []string
	for _, f := range frames {
		types = append(types, f.Type)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(types, "chat.input_request") || !slices.Contains(types, "chat.run_start") {
		t.Fatalf("frames of the run: %v", types)
	}
	if notified >= len(frames) {
		t.Fatalf("%d notifications for %d frames %v: one per frame", notified, len(frames), types)
	}
	t.Logf("%d notifications for %d frames", notified, len(frames))
}
