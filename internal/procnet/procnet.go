// Package procnet names the local process listening on a TCP port, from
// Linux's /proc: the listening socket's inode in /proc/net/tcp{,6}, then the
// process holding that inode among /proc/*/fd. `mozaiks up` and `mozaiks
// doctor` both use it to say who holds a busy port.
package procnet

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PortHolder returns "comm (pid N)" for the process listening on port, or ""
// when it cannot tell: another user's process without root, another network
// namespace, or no /proc (not Linux). procRoot is normally "/proc".
func PortHolder(procRoot string, port int) string {
	inodes := map[string]bool{}
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		listeningInodes(filepath.Join(procRoot, f), port, inodes)
	}
	if len(inodes) == 0 {
		return ""
	}
	pids, _ := filepath.Glob(filepath.Join(procRoot, "[0-9]*"))
	for _, pdir := range pids {
		fds, err := os.ReadDir(filepath.Join(pdir, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(pdir, "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				comm, _ := os.ReadFile(filepath.Join(pdir, "comm"))
				return fmt.Sprintf("%s (pid %s)", strings.TrimSpace(string(comm)), filepath.Base(pdir))
			}
		}
	}
	return ""
}

// listeningInodes adds the inodes of sockets in LISTEN state (0A) on port.
// Lines are "sl local_address rem_address st ... inode", addresses HEXIP:HEXPORT.
func listeningInodes(path string, port int, into map[string]bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err == nil && int(p) == port {
			into[fields[9]] = true
		}
	}
}
