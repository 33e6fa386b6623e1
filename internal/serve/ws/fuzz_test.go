package ws

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/workflow"
	"github.com/mozaiks/mozaiks/workflows"
)

// FuzzInboundFrame feeds arbitrary client frames to a socket's inbound
// decoder and dispatch, wired to a real chat runtime (embedded store, the
// offline echo model). No frame may panic, and every reply the socket
// queues is a JSON object with a type.
func FuzzInboundFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"user.input.submit","chat_id":"c1","text":"hello"}`,
		`{"type":"user.input.submit","text":null}`,
		`{"type":"user.input.submit","text":"x","input_request_id":"req_1","context":{"a":[1,{"b":null}]}}`,
		`{"type":"ui_tool_response","eventId":"ev_1","response":{"ok":true}}`,
		`{"type":"ui_tool_response","ui_tool_id":"t","response":[1]}`,
		`{"type":"client.resume","chat_id":"c1","lastClientIndex":12}`,
		`{"type":"client.resume","lastClientIndex":-1}`,
		`{"type":"client.resume","lastClientIndex":1e400}`,
		`{"type":"chat.cancel"}`, `{"type":"ping"}`, `{"type":""}`, `{"type":"chat.enter_general_mode"}`,
		`{"type":"user.input.submit","chat_id":"other","text":"x"}`,
		`[]`, `null`, `"str"`, `{`, `{"type":1}`, `{"type":"user.input.submit","text":"a"} trailing`,
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	set, _ := workflow.LoadSet("", workflows.FS)
	eng := engine.New(engine.Options{Workflows: set, LLM: llm.NewEcho(), DefaultModel: "echo"})
	chats := chat.NewManager(chat.Options{Store: st, Runner: eng, Workflows: set, Owner: "fuzz", SingleProcess: true})
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		chats.Shutdown(ctx)
	})
	h := NewHandler(chats, Options{MaxMessageBytes: 4096})
	p := Params{Workflow: "assistant", AppID: "fuzz", ChatID: "c1", UserID: "u1"}
	if _, _, err := chats.Open(context.Background(), chat.OpenRequest{Workflow: p.Workflow, AppID: p.AppID, ChatID: p.ChatID, UserID: p.UserID}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		// One frame queues at most one task (a reply, a resume or a switch),
		// under maxTasks, so nothing blocks; a new conn owns its writes until
		// start, so no writer runs and the tasks stay queued.
		c := newConn(h, nil, p)
		c.handle(context.Background(), msg)
		var replies []chat.Frame
		for _, tk := range c.tasks {
			switch {
			case tk.sw != nil:
				chats.Unsubscribe(tk.sw.sub)
				replies = append(replies, tk.sw.frame)
			case tk.resume == nil:
				replies = append(replies, tk.frame)
			}
		}
		for _, fr := range replies {
			var v struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(fr.Bytes, &v); err != nil || v.Type == "" {
				t.Fatalf("reply to %q is not a typed JSON frame: %s", msg, fr.Bytes)
			}
		}
	})
}
