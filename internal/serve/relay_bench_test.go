//go:build !windows

package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
	openai "github.com/sashabaranov/go-openai"
)

// relayServer is the least a runtime in front of the model can be, built of
// the libraries mozaiks uses and nothing of its own: a gorilla/websocket
// server whose every socket keeps a conversation in memory and, for each
// user.input.submit frame, decodes it, streams a completion with go-openai
// and sends each delta as a chat.print frame, then a chat.input_request. No
// store, no engine, no ack, no fan-out. BenchmarkTTFTApart times it beside
// mozaiks: what it adds over the direct clients is what the libraries and
// the sockets cost on this machine, the floor under mozaiks' own time.
// It speaks just enough of the protocol for wsChat.
func relayServer(b *testing.B, llmURL string, conns int) string {
	b.Helper()
	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = llmURL
	cfg.HTTPClient = directClient(conns)
	client := openai.NewClientWithConfig(cfg)
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = relayChat(c, client)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "ws://" + ln.Addr().String()
}

type relayFrame struct {
	Type string         `json:"type"`
	Data map[string]any `json:"data,omitempty"`
}

func relayChat(c *websocket.Conn, client *openai.Client) error {
	history := []openai.ChatCompletionMessage{{Role: "system", Content: "You are a helpful, concise assistant. Answer the user's questions clearly."},
		{Role: "assistant", Content: "Hi! What can I help you with?"}}
	ask := relayFrame{Type: "chat.input_request", Data: map[string]any{"prompt": "Hi! What can I help you with?"}}
	if err := c.WriteJSON(ask); err != nil {
		return err
	}
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return err
		}
		var in struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(msg, &in); err != nil || in.Type != "user.input.submit" {
			continue
		}
		history = append(history, openai.ChatCompletionMessage{Role: "user", Content: in.Text})
		st, err := client.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{Model: "gpt-4o-mini",
			Messages: history, Stream: true, StreamOptions: &openai.StreamOptions{IncludeUsage: true}})
		if err != nil {
			return err
		}
		reply := ""
		for {
			r, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				st.Close()
				return err
			}
			if len(r.Choices) == 0 || r.Choices[0].Delta.Content == "" {
				continue
			}
			reply += r.Choices[0].Delta.Content
			if err := c.WriteJSON(relayFrame{Type: "chat.print", Data: map[string]any{"content": r.Choices[0].Delta.Content}}); err != nil {
				st.Close()
				return err
			}
		}
		st.Close()
		history = append(history, openai.ChatCompletionMessage{Role: "assistant", Content: reply})
		if err := c.WriteJSON(ask); err != nil {
			return err
		}
	}
}
