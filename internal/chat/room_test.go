package chat

import (
	"context"
	"fmt"
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
