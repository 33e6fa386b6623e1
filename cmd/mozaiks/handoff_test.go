package main_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// Two replicas on one MongoDB-wire server: the replica running a reply is
// killed with SIGKILL mid-stream. The other one takes the chat over once the
// dead one's lease has run out (2 s here) and answers the question, once; a
// socket on the survivor sees the answer live.
func TestReplicaDiesMidRunOtherFinishes(t *testing.T) {
	t.Parallel()
	db := ferret.NewServer(t)
	fake := llmtest.New(t)
	env := []string{"MONGO_URI=" + db.URI + "handoff", "OPENAI_BASE_URL=" + fake.URL(), "OPENAI_API_KEY=sk-test", "MOZAIKS_RUN_LEASE=2s"}
	a := serve(t, t.TempDir(), env...)
	b := serve(t, t.TempDir(), env...)
	path := "/ws/assistant/default/chat-handoff/u1"
	onA := dialLive(t, wsBase(a)+path)
	onA.until(t, "greeting on A", 0, typeIs("chat.resume_boundary"))
	onB := dialLive(t, wsBase(b)+path)
	onB.until(t, "greeting on B", 0, typeIs("chat.resume_boundary"))

	fake.Enqueue(llmtest.Reply{Text: strings.Repeat("slow ", 300), TokenDelay: 20 * time.Millisecond},
		llmtest.Reply{Text: "Answered by the survivor."})
	if err := onA.c.WriteJSON(map[string]any{"type": "user.input.submit", "text": "who answers?"}); err != nil {
		t.Fatal(err)
	}
	onA.until(t, "the reply streaming on A", 0, typeIs("chat.print"))
	a.signal(syscall.SIGKILL)
	a.wait(10 * time.Second)
	killed := time.Now()

	defer func() {
		if t.Failed() {
			t.Logf("survivor log:\n%s", b.stderr)
		}
	}()
	i := onB.until(t, "the answer on B", 0, func(f map[string]any) bool {
		return f["type"] == "chat.text" && f["content"] == "Answered by the survivor."
	})
	t.Logf("the survivor answered %.1f s after the kill", time.Since(killed).Seconds())
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st struct{ Status string }
		call(t, "GET", b.url+"/api/sessions/chat-handoff?user_id=u1", nil, &st)
		if st.Status == "awaiting_input" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chat still %q 30 s after the handoff", st.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Replay from 0 on the survivor: strictly increasing, one question,
	// one answer after it.
	evs := replayAll(t, b, "assistant", "chat-handoff")
	questions, answers, _ := count(evs, "who answers?")
	for k := 1; k < len(evs); k++ {
		if evs[k].Seq <= evs[k-1].Seq {
			t.Fatalf("replay not strictly increasing: %v", evs)
		}
	}
	if questions != 1 || answers != 1 {
		t.Fatalf("%d questions, %d answers after the handoff (frames on B up to %d): %v", questions, answers, i, evs)
	}
}
