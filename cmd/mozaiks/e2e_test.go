package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// bin is the mozaiks binary built once for these tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mozaiks-e2e-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "mozaiks")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build mozaiks: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	prev   string // the log of the process this one replaced, for failures
	done   chan struct{}
	code   int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// start runs `mozaiks args...` in dir with only env (plus PATH/HOME).
func start(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p := &proc{t: t, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	cmd.Stdout = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() { p.signal(syscall.SIGKILL); <-p.done })
	return p
}

// serve starts `mozaiks serve` on a free port and waits for /api/health.
func serve(t *testing.T, dir string, env ...string) *proc {
	t.Helper()
	port := freePort(t)
	p := start(t, dir, append(env, "PORT="+port, "LOG_LEVEL=debug"), "serve")
	p.url = "http://127.0.0.1:" + port
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/api/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("serve exited with %d before answering:\n%s", p.code, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer /api/health within 30s:\n%s", p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) signal(sig os.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// wait returns the exit code, failing after timeout.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		p.t.Fatalf("process still running after %s:\n%s", timeout, p.stderr)
		return -1
	}
}

func call(t *testing.T, method, url string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

func TestVersion(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), nil, "version")
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("version exit %d", code)
	}
	out := p.stderr.String()
	for _, want := range []string{"mozaiks ", "go1.", "linux/"} {
		if !strings.Contains(out, want) {
			t.Fatalf("version output %q lacks %q", out, want)
		}
	}
}

func TestInvalidSettingFailsAtStart(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), []string{"PORT=eighty"}, "serve")
	if code := p.wait(10 * time.Second); code != 2 {
		t.Fatalf("exit %d, want 2:\n%s", code, p.stderr)
	}
	if out := p.stderr.String(); !strings.Contains(out, "PORT") || !strings.Contains(out, "environment") {
		t.Fatalf("error does not name the setting and its source:\n%s", out)
	}
}

func TestServeFreshDirectoryPersistsAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := serve(t, dir)
	var h struct {
		Status  string
		MongoDB struct{ Backend string } `json:"mongodb"`
	}
	call(t, "GET", p.url+"/api/health", nil, &h)
	if h.Status != "ok" || h.MongoDB.Backend != "embedded" {
		t.Fatalf("health %+v", h)
	}
	if !strings.Contains(p.stderr.String(), "embedded") {
		t.Fatalf("banner does not say the store is embedded:\n%s", p.stderr)
	}
	var s struct {
		ChatID string `json:"chat_id"`
	}
	if code := call(t, "POST", p.url+"/api/sessions", map[string]string{"workflow": "assistant", "user_id": "u1"}, &s); code != 201 {
		t.Fatalf("create %d", code)
	}
	var list struct {
		Sessions []struct {
			ChatID string `json:"chat_id"`
		}
	}
	call(t, "GET", p.url+"/api/sessions?user_id=u1", nil, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].ChatID != s.ChatID {
		t.Fatalf("list %+v", list)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("SIGTERM exit %d:\n%s", code, p.stderr)
	}
	p2 := serve(t, dir)
	if code := call(t, "GET", p2.url+"/api/sessions/"+s.ChatID+"?user_id=u1", nil, nil); code != 200 {
		t.Fatalf("session lost across restart: %d", code)
	}
}

func TestSecondServeOnSameDataDirRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serve(t, dir)
	p2 := start(t, dir, []string{"PORT=" + freePort(t)}, "serve")
	if code := p2.wait(15 * time.Second); code != 1 {
		t.Fatalf("second serve exit %d, want 1:\n%s", code, p2.stderr)
	}
	if !strings.Contains(p2.stderr.String(), "in use by another mozaiks process") {
		t.Fatalf("unclear refusal:\n%s", p2.stderr)
	}
}

func TestMongoUnreachableThenRecovers(t *testing.T) {
	t.Parallel()
	addr, err := ferret.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	p := serve(t, t.TempDir(), "MONGO_URI=mongodb://"+addr+"/e2e")
	var h struct {
		Status  string
		MongoDB struct{ Status, Backend string } `json:"mongodb"`
	}
	if code := call(t, "GET", p.url+"/api/health", nil, &h); code != 200 || h.Status != "degraded" || h.MongoDB.Backend != "mongodb" {
		t.Fatalf("health %d %+v", code, h)
	}
	if code := call(t, "GET", p.url+"/api/ready", nil, nil); code != 503 {
		t.Fatalf("ready %d, want 503", code)
	}
	var e struct{ Error struct{ Code string } }
	if code := call(t, "POST", p.url+"/api/sessions", map[string]string{"workflow": "assistant", "user_id": "u1"}, &e); code != 503 || e.Error.Code != "STORE_UNAVAILABLE" {
		t.Fatalf("create while down: %d %+v", code, e)
	}
	// Mongo comes back: the server recovers by itself.
	_, stop, err := ferret.Serve(context.Background(), addr, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(30 * time.Second)
	for call(t, "GET", p.url+"/api/ready", nil, nil) != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("not ready 30s after Mongo returned:\n%s", p.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code := call(t, "POST", p.url+"/api/sessions", map[string]string{"workflow": "assistant", "user_id": "u1"}, nil); code != 201 {
		t.Fatalf("create after recovery: %d", code)
	}
}

// wsFrames reads frames until one of type typ; it fails on timeout.
func wsUntil(t *testing.T, c *websocket.Conn, typ string) []map[string]any {
	t.Helper()
	var got []map[string]any
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		var f map[string]any
		if err := c.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for %s: %v (got %d frames)", typ, err, len(got))
		}
		got = append(got, f)
		if f["type"] == typ {
			return got
		}
	}
}

func TestKillMidRunKeepsAcknowledgedMessages(t *testing.T) {
	t.Parallel()
	fake := llmtest.New(t)
	dir := t.TempDir()
	env := []string{"OPENAI_BASE_URL=" + fake.URL(), "OPENAI_API_KEY=sk-test"}
	p := serve(t, dir, env...)
	ws := "ws" + strings.TrimPrefix(p.url, "http") + "/ws/assistant/default/chat-kill/u1"
	c, _, err := websocket.DefaultDialer.Dial(ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	wsUntil(t, c, "chat.input_request")
	fake.Enqueue(llmtest.Reply{Text: strings.Repeat("slow ", 200), TokenDelay: 20 * time.Millisecond})
	_ = c.WriteJSON(map[string]any{"type": "user.input.submit", "text": "remember this"})
	wsUntil(t, c, "chat.input_ack")
	wsUntil(t, c, "chat.print") // the reply is streaming
	p.signal(syscall.SIGKILL)
	p.wait(10 * time.Second)
	c.Close()

	p2 := serve(t, dir, env...)
	// The interrupted run is recovered after the restart: the acknowledged
	// message is there and gets its answer (the fake's default, an echo),
	// and the chat leaves in_progress. A socket that connected while the
	// recovery ran would see its frames live, before the next answer.
	var s struct {
		Status   string                          `json:"status"`
		Messages []struct{ Data map[string]any } `json:"messages"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		call(t, "GET", p2.url+"/api/sessions/chat-kill?user_id=u1", nil, &s)
		if s.Status != "in_progress" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chat still in progress 10 s after the restart: %+v", s.Messages)
		}
	}
	var texts []string
	for _, m := range s.Messages {
		texts = append(texts, fmt.Sprintf("%v: %v", m.Data["agent"], m.Data["content"]))
	}
	if !slices.Contains(texts, "user: remember this") || texts[len(texts)-1] != "Assistant: You said: remember this" {
		t.Fatalf("after SIGKILL and restart, the acknowledged message and its one answer, last: %q", texts)
	}
	// The chat continues on the next message.
	fake.Enqueue(llmtest.Reply{Text: "continuing"})
	c2, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p2.url, "http")+"/ws/assistant/default/chat-kill/u1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	wsUntil(t, c2, "chat.resume_boundary")
	_ = c2.WriteJSON(map[string]any{"type": "user.input.submit", "text": "still there?"})
	fs := wsUntil(t, c2, "chat.input_request")
	last := ""
	for _, f := range fs {
		if f["type"] == "chat.text" {
			last, _ = f["content"].(string)
		}
	}
	if last != "continuing" {
		t.Fatalf("chat did not continue after restart; last text %q", last)
	}
}

// A broken workflow folder is reported and skipped; serve starts with the rest.
func TestServeSkipsBrokenWorkflows(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wf := filepath.Join(dir, "workflows")
	for name, files := range map[string]map[string]string{
		"good": {"orchestrator.yaml": "workflow_name: good\ninitial_agent: A\n", "agents.yaml": "agents:\n  - name: A\n    system_message: hi\n"},
		"bad":  {"orchestrator.yaml": "workflow_name: bad\ninitial_agent: Nobody\n", "agents.yaml": "agents:\n  - name: A\n    system_message: [oops\n"},
	} {
		if err := os.MkdirAll(filepath.Join(wf, name), 0o755); err != nil {
			t.Fatal(err)
		}
		for f, body := range files {
			if err := os.WriteFile(filepath.Join(wf, name, f), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := serve(t, dir)
	var wfs map[string]any
	call(t, "GET", p.url+"/api/workflows", nil, &wfs)
	if wfs["good"] == nil || wfs["bad"] != nil || wfs["assistant"] == nil {
		t.Fatalf("workflows served: %v", keys(wfs))
	}
	if !strings.Contains(p.stderr.String(), "agents.yaml") {
		t.Fatalf("the broken file is not reported:\n%s", p.stderr)
	}
	v := start(t, dir, nil, "workflows", "validate", "workflows")
	if code := v.wait(20 * time.Second); code != 1 {
		t.Fatalf("workflows validate exit %d, want 1:\n%s", code, v.stderr)
	}
	if out := v.stderr.String(); !strings.Contains(out, "bad/agents.yaml:") {
		t.Fatalf("validate does not name file and line:\n%s", out)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
