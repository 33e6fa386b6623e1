package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
)

func newManager(t testing.TB) (*chat.Manager, store.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return chat.NewManager(chat.Options{Store: st, SingleProcess: true}), st
}

func TestOpenGeneral(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, st := newManager(t)
	// A workflow chat of the same workflow is not a general chat.
	if _, _, err := st.CreateSession(ctx, store.Session{ChatID: "chat_1", AppID: "a", UserID: "u1", Workflow: "assistant",
		Status: store.StatusInProgress}); err != nil {
		t.Fatal(err)
	}
	req := chat.GeneralRequest{AppID: "a", UserID: "u1", Workflow: "assistant"}
	first, err := m.OpenGeneral(ctx, req)
	if err != nil || !chat.IsGeneral(first.ChatID) || first.UserID != "u1" || first.Workflow != "assistant" {
		t.Fatalf("first general chat %+v, %v", first, err)
	}
	other, _ := m.OpenGeneral(ctx, chat.GeneralRequest{AppID: "a", UserID: "u2", Workflow: "assistant"})
	time.Sleep(5 * time.Millisecond) // creation times are kept to the millisecond: make "latest" unambiguous
	fresh, _ := m.OpenGeneral(ctx, chat.GeneralRequest{AppID: "a", UserID: "u1", Workflow: "assistant", New: true})
	for _, tc := range []struct {
		name string
		req  chat.GeneralRequest
		want string
	}{
		{"latest when none named", req, fresh.ChatID},
		{"the one named", chat.GeneralRequest{AppID: "a", UserID: "u1", Workflow: "assistant", ChatID: first.ChatID}, first.ChatID},
		{"another user's is not taken", chat.GeneralRequest{AppID: "a", UserID: "u1", Workflow: "assistant", ChatID: other.ChatID}, fresh.ChatID},
		{"a workflow chat is not taken", chat.GeneralRequest{AppID: "a", UserID: "u1", Workflow: "assistant", ChatID: "chat_1"}, fresh.ChatID},
		{"unknown id", chat.GeneralRequest{AppID: "a", UserID: "u1", Workflow: "assistant", ChatID: "general-nope"}, fresh.ChatID},
	} {
		got, err := m.OpenGeneral(ctx, tc.req)
		if err != nil || got.ChatID != tc.want {
			t.Errorf("%s: got %s (%v), want %s", tc.name, got.ChatID, err, tc.want)
		}
	}
	list, err := m.ListGeneral(ctx, "a", "u1", 10, chat.SameUser("u1"))
	if err != nil || len(list) != 2 || list[0].ChatID != fresh.ChatID || list[1].ChatID != first.ChatID {
		t.Fatalf("ListGeneral = %v, %v", list, err)
	}
	wf, err := m.ListWorkflowChats(ctx, "a", "u1", "assistant", "", 10, chat.SameUser("u1"))
	if err != nil || len(wf) != 1 || wf[0].ChatID != "chat_1" {
		t.Fatalf("ListWorkflowChats = %v, %v", wf, err)
	}
}

func TestAttachChecksOwnership(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, st := newManager(t)
	if _, _, err := st.CreateSession(ctx, store.Session{ChatID: "c1", AppID: "a", UserID: "u1", Workflow: "w",
		Status: store.StatusInProgress}); err != nil {
		t.Fatal(err)
	}
	att := chat.Attachment{Filename: "a.txt", ContentType: "text/plain; charset=utf-8", Data: []byte("hi"), Text: true}
	if _, err := m.Attach(ctx, "a", "c1", att, chat.SameUser("u2")); !errors.Is(err, chat.ErrNotYours) {
		t.Fatalf("another user's chat: %v", err)
	}
	ev, err := m.Attach(ctx, "a", "c1", att, chat.SameUser("u1"))
	if err != nil || ev.Type != "chat.attachment" || ev.Seq != 1 || !strings.Contains(string(ev.Data), `"text":"hi"`) {
		t.Fatalf("attach: %+v %v", ev, err)
	}
	bin := chat.Attachment{Filename: "b.bin", ContentType: "application/octet-stream", Data: []byte{0, 1, 2}}
	ev, _ = m.Attach(ctx, "a", "c1", bin, chat.SameUser("u1"))
	if !strings.Contains(string(ev.Data), `"data_base64":"AAEC"`) || strings.Contains(string(ev.Data), `"text"`) {
		t.Fatalf("binary attachment stored as %s", ev.Data)
	}
}

// ListGeneral reads the user's sessions and keeps the general ones. With
// many newer workflow chats it pages through all of them; the baseline is
// one page of the same user's sessions straight from the store.
func BenchmarkListGeneral(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{100, 1000} {
		// Worst case: the general chats are the oldest, behind n newer
		// workflow chats, so every page is read.
		m, st := newManager(b)
		for range 3 {
			if _, err := m.OpenGeneral(ctx, chat.GeneralRequest{AppID: "a", UserID: "u1", Workflow: "assistant", New: true}); err != nil {
				b.Fatal(err)
			}
		}
		for i := range n {
			if _, _, err := st.CreateSession(ctx, store.Session{ChatID: fmt.Sprintf("chat_%d", i), AppID: "a", UserID: "u1",
				Workflow: "assistant", Status: store.StatusInProgress}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("baseline_ListSessions_50/%d_workflow_chats", n), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := st.ListSessions(ctx, store.ListQuery{AppID: "a", UserID: "u1", Limit: 50}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("ListGeneral_50/%d_workflow_chats", n), func(b *testing.B) {
			for b.Loop() {
				if list, err := m.ListGeneral(ctx, "a", "u1", 50, chat.SameUser("u1")); err != nil || len(list) != 3 {
					b.Fatal(len(list), err)
				}
			}
		})
	}
}

// The lists go through the access check: a caller who may not see the
// user's chats gets none (a nil Allow refuses everything).
func TestGeneralListsFailClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _ := newManager(t)
	if _, err := m.OpenGeneral(ctx, chat.GeneralRequest{AppID: "a", UserID: "u1", Workflow: "assistant"}); err != nil {
		t.Fatal(err)
	}
	for name, allow := range map[string]chat.Allow{"nil": nil, "other user": chat.SameUser("u2")} {
		if list, err := m.ListGeneral(ctx, "a", "u1", 10, allow); !errors.Is(err, chat.ErrNotYours) || len(list) != 0 {
			t.Errorf("%s: ListGeneral = %v, %v", name, list, err)
		}
		if list, err := m.ListWorkflowChats(ctx, "a", "u1", "", "", 10, allow); !errors.Is(err, chat.ErrNotYours) || len(list) != 0 {
			t.Errorf("%s: ListWorkflowChats = %v, %v", name, list, err)
		}
	}
}

func TestAttachTruncatesLongTextForTheModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, st := newManager(t)
	if _, _, err := st.CreateSession(ctx, store.Session{ChatID: "c1", AppID: "a", UserID: "u1", Workflow: "w",
		Status: store.StatusInProgress}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", chat.MaxAttachmentText) // 2 bytes a rune: the cut falls inside one
	ev, err := m.Attach(ctx, "a", "c1", chat.Attachment{Filename: "big.txt", Data: []byte(long), Text: true}, chat.SameUser("u1"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Text string `json:"text"`
		B64  string `json:"data_base64"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatal(err)
	}
	if !utf8.ValidString(d.Text) || !strings.Contains(d.Text, "[truncated: the file has") || len(d.Text) > chat.MaxAttachmentText+64 || d.B64 == "" {
		t.Fatalf("long text attachment: text %d bytes (valid %v), base64 %d bytes", len(d.Text), utf8.ValidString(d.Text), len(d.B64))
	}
}
