package procnet

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestPortHolderNamesThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads Linux /proc")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	got := PortHolder("/proc", port)
	if want := fmt.Sprintf("(pid %d)", os.Getpid()); !strings.HasSuffix(got, want) {
		t.Fatalf("PortHolder(%d) = %q, want ... %s", port, got, want)
	}
	ln.Close()
	if got := PortHolder("/proc", port); got != "" {
		t.Fatalf("closed port still held by %q", got)
	}
}
