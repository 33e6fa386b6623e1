package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mozaiks/mozaiks/internal/procnet"
)

func checkPorts() Check {
	return Check{Code: "NET01", Name: "host ports", Timeout: 10 * time.Second, Run: runPorts}
}

type neededPort struct {
	port   int
	hostIP string
	what   string // who needs it
	move   string // how to move it
}

func (e *Env) neededPorts() ([]neededPort, error) {
	if e.DeploymentKind() == KindK8s {
		return nil, nil // the cluster's Service and Ingress own the ports, not this host
	}
	cf, err := e.Compose()
	if err != nil {
		return nil, err
	}
	if cf != nil {
		var out []neededPort
		for _, p := range cf.Ports {
			out = append(out, neededPort{port: p.Port, hostIP: p.HostIP, what: "service " + p.Service + " (" + p.Spec + ", " + filepath.Base(cf.Path) + ")",
				move: strings.TrimPrefix(p.MoveHint(), "stop what holds it, or ")})
		}
		return out, nil
	}
	port, err := strconv.Atoi(strings.TrimSpace(e.Values["port"]))
	if err != nil {
		return nil, nil
	}
	host := ""
	if addr := strings.TrimSpace(e.Values["addr"]); addr != "" {
		h, p, err := net.SplitHostPort(addr)
		if err == nil {
			host = h
			port, _ = strconv.Atoi(p)
		}
	}
	if port == 0 {
		return nil, nil
	}
	return []neededPort{{port: port, hostIP: host, what: "mozaiks serve",
		move: fmt.Sprintf("set PORT=%d in .env (or mozaiks serve --port %d)", port+1, port+1)}}, nil
}

func runPorts(ctx context.Context, env *Env) Result {
	ports, err := env.neededPorts()
	if err != nil {
		return composeLoadFailure(err)
	}
	if len(ports) == 0 {
		if env.DeploymentKind() == KindK8s {
			return skip("a Kubernetes deployment: the cluster's Service and Ingress hold the ports, not this host")
		}
		return skip("no host ports to check (the compose file publishes none)")
	}
	d := map[string]any{}
	var busy []string
	var hints []string
	for _, p := range ports {
		key := strconv.Itoa(p.port)
		if !portBusy(p.hostIP, p.port) {
			d[key] = "free: " + p.what
			continue
		}
		holder := procnet.PortHolder(env.ProcRoot, p.port)
		if env.ourDeployment(ctx, p, holder) {
			d[key] = "in use by this deployment: " + p.what + paren(holder)
			continue
		}
		who := orDash(holder, "another process (not visible from here: try sudo ss -ltnp 'sport = :"+key+"')")
		d[key] = "busy: held by " + who
		busy = append(busy, fmt.Sprintf("%d (needed by %s) is held by %s", p.port, p.what, who))
		hints = append(hints, "stop "+who+" or "+p.move)
	}
	if len(busy) > 0 {
		return fail("port "+strings.Join(busy, "; port "), strings.Join(hints, "; "), d)
	}
	var freeP, oursP []string
	for _, p := range ports {
		if strings.HasPrefix(fmt.Sprint(d[strconv.Itoa(p.port)]), "free") {
			freeP = append(freeP, strconv.Itoa(p.port))
		} else {
			oursP = append(oursP, strconv.Itoa(p.port))
		}
	}
	var parts []string
	if len(freeP) > 0 {
		parts = append(parts, "free: "+strings.Join(freeP, ", "))
	}
	if len(oursP) > 0 {
		parts = append(parts, "in use by this deployment: "+strings.Join(oursP, ", "))
	}
	msg := "ports " + strings.Join(parts, "; ")
	return ok(msg, d)
}

// portBusy tries to bind the port as the service would.
func portBusy(hostIP string, port int) bool {
	if hostIP == "0.0.0.0" || hostIP == "::" {
		hostIP = ""
	}
	l, err := net.Listen("tcp", net.JoinHostPort(hostIP, strconv.Itoa(port)))
	if err != nil {
		// Only "in use" is a finding; EACCES (a port below 1024 without
		// root) or an address this host lacks says nothing about a holder.
		return errors.Is(err, syscall.EADDRINUSE)
	}
	l.Close()
	return false
}

// ourDeployment: a busy port is fine when this deployment holds it, i.e.
// Docker's proxy for a published port, or the runtime itself answering.
func (e *Env) ourDeployment(ctx context.Context, p neededPort, holder string) bool {
	if strings.HasPrefix(holder, "docker-proxy") || strings.HasPrefix(holder, "mozaiks") {
		return true
	}
	host := p.hostIP
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, "http://"+net.JoinHostPort(host, strconv.Itoa(p.port))+"/api/diag/whoami", nil)
	if err != nil {
		return false
	}
	resp, err := e.httpClient(2 * time.Second).Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json")
}

func checkHost() Check {
	return Check{Code: "HST01", Name: "disk and memory", Timeout: 5 * time.Second, Run: runHost}
}

// Defaults for the HST01 thresholds.
const (
	defMinDisk  = 1 << 30
	defWarnDisk = 5 << 30
	defMinMem   = 256 << 20
	defWarnMem  = 1 << 30
)

func orU(v, def uint64) uint64 {
	if v == 0 {
		return def
	}
	return v
}

// dataPath is where the data lives: Docker's root for a compose deployment
// (Mongo's named volume), the embedded store's directory otherwise.
func (e *Env) dataPath() string {
	if cf, _ := e.Compose(); cf != nil {
		for _, p := range []string{"/var/lib/docker/volumes", "/var/lib/docker"} {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	dir := e.Values["data_dir"]
	if dir == "" {
		dir = "."
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(e.Dir, dir)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	// The directory may not exist yet: measure its nearest existing parent.
	for {
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

func runHost(_ context.Context, env *Env) Result {
	path := env.dataPath()
	disk, err := diskFree(path)
	if err != nil {
		return fail("cannot measure free disk at "+path, "", map[string]any{"error": err.Error()})
	}
	d := map[string]any{"path": path, "disk_free_bytes": int64(disk), "disk_free": human(disk)}
	mem, memOK := memAvailable(filepath.Join(env.ProcRoot, "meminfo"))
	if memOK {
		d["mem_available_bytes"] = int64(mem)
		d["mem_available"] = human(mem)
	}
	minDisk, warnDisk := orU(env.MinDisk, defMinDisk), orU(env.WarnDisk, defWarnDisk)
	minMem, warnMem := orU(env.MinMem, defMinMem), orU(env.WarnMem, defWarnMem)
	switch {
	case disk < minDisk:
		return fail(fmt.Sprintf("only %s free at %s", human(disk), path), fmt.Sprintf("free at least %s there (MongoDB stops writing when its disk is full); docker system prune removes unused images", human(warnDisk-disk)), d)
	case memOK && mem < minMem:
		return fail(fmt.Sprintf("only %s of memory available", human(mem)), fmt.Sprintf("the runtime and MongoDB need at least %s; stop other services or add memory", human(warnMem)), d)
	case disk < warnDisk:
		return warn(fmt.Sprintf("%s free at %s", human(disk), path), fmt.Sprintf("keep at least %s free for MongoDB's data and logs", human(warnDisk)), d)
	case memOK && mem < warnMem:
		return warn(fmt.Sprintf("%s of memory available", human(mem)), fmt.Sprintf("%s or more is recommended for the runtime with MongoDB", human(warnMem)), d)
	}
	msg := fmt.Sprintf("%s free at %s", human(disk), path)
	if memOK {
		msg += fmt.Sprintf(", %s memory available", human(mem))
	}
	return ok(msg, d)
}

func memAvailable(path string) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}

func human(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
