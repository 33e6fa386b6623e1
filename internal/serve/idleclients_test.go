//go:build !windows

package serve_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkIdleConnections measures the server alone: its clients live in a
// child process, this test binary run again with MOZAIKS_IDLE_CLIENTS set
// (see idleClients). The child dials, settles every socket (the echo server
// answers one message; a mozaiks chat greets and asks for input), prints
// "ready" and holds the sockets until its stdin closes.
const idleClientsEnv = "MOZAIKS_IDLE_CLIENTS"

func init() {
	if os.Getenv(idleClientsEnv) == "" {
		return
	}
	if err := idleClients(os.Getenv("MOZAIKS_IDLE_URL"), os.Getenv("MOZAIKS_IDLE_MODE"), os.Getenv("MOZAIKS_IDLE_N")); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// idleClients is the child's side: n sockets to base (a URL ending in "/"
// gets a new chat id and user per socket), each settled once, held open
// until stdin closes.
func idleClients(base, mode, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil {
		return err
	}
	if err := raiseNoFile(uint64(n + 256)); err != nil {
		return err
	}
	settle := func(c *websocket.Conn) error {
		_, err := readUntil(c, `"chat.input_request"`, nil)
		return err
	}
	if mode == "echo" {
		settle = func(c *websocket.Conn) error {
			if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
				return err
			}
			_, _, err := c.ReadMessage()
			return err
		}
	}
	conns := make([]*websocket.Conn, n)
	jobs := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	tag := strconv.Itoa(os.Getpid())
	for range 32 {
		wg.Go(func() {
			d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
			for i := range jobs {
				u := base
				if strings.HasSuffix(u, "/") {
					u += "c" + tag + "-" + strconv.Itoa(i) + "/u" + strconv.Itoa(i)
				}
				c, _, err := d.Dial(u, nil)
				if err == nil {
					err = settle(c)
					_ = c.SetReadDeadline(time.Time{})
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("connection %d: %w", i, err):
					default:
					}
					continue
				}
				conns[i] = c
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// clientProcess runs n idle clients of url in a child process and returns
// once they are all settled; stop closes them and waits for the child.
func clientProcess(b *testing.B, url, mode string, n int) (stop func()) {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^$")
	cmd.Env = append(os.Environ(), idleClientsEnv+"=1", "MOZAIKS_IDLE_URL="+url, "MOZAIKS_IDLE_MODE="+mode,
		"MOZAIKS_IDLE_N="+strconv.Itoa(n), "MOZAIKS_BENCH_HEAPPROFILE=")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop = func() {
		stdin.Close()
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		stop()
		b.Fatalf("idle clients (%s): %q %v", mode, strings.TrimSpace(line), err)
	}
	return stop
}

// raiseNoFile lifts RLIMIT_NOFILE to need, or as far as the hard limit
// allows (an error when that is not enough).
func raiseNoFile(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		// Raising the hard limit needs CAP_SYS_RESOURCE.
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: need, Max: need})
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	lim.Cur = min(need, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur < need {
		return errors.New("file limit " + strconv.FormatUint(lim.Cur, 10) + " is below " + strconv.FormatUint(need, 10))
	}
	return nil
}
