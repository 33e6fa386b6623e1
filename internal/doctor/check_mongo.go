package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mozaiks/mozaiks/internal/config"
	storemongo "github.com/mozaiks/mozaiks/internal/store/mongo"
)

const (
	mongoPings    = 3
	mongoSlowPing = 100 * time.Millisecond
)

func checkMongo() Check {
	return Check{Code: "MDB01", Name: "MongoDB", Needs: []string{"CFG01"}, Timeout: 20 * time.Second, Run: runMongo}
}

// runMongo probes Mongo from where the runtime reaches it: in a compose
// deployment from inside the runtime container (the compose network's
// names do not resolve on the host), elsewhere from here. Both go through
// store/mongo's probe: one connect policy, one vocabulary of causes.
func runMongo(ctx context.Context, env *Env) Result {
	if env.IsCompose() {
		return runMongoCompose(ctx, env)
	}
	uri := env.Config.MongoURI
	if uri == "" {
		return skip("MONGO_URI is not set: the runtime uses the embedded store in " + env.Config.DataDir)
	}
	d := map[string]any{"uri": config.RedactURI(uri), "database": config.DatabaseName(uri), "probed_from": "this host"}
	res, err := storemongo.Probe(ctx, uri, storemongo.ProbeOptions{Pings: mongoPings, AppName: "mozaiks-doctor"})
	rep := storemongo.Report(res, err)
	if !rep.OK && env.DeploymentKind() == KindK8s && (rep.Cause == storemongo.CauseDNS) {
		return skip("MONGO_URI's host resolves only inside the cluster: check it there with " +
			"kubectl exec deploy/mozaiksai-runtime -- /mozaiks healthcheck --mongo")
	}
	return judgeMongo(rep, d, "")
}

// judgeMongo turns a probe report into MDB01's result; extra is added to a
// failure's message (what the deployment shows about the cause).
func judgeMongo(rep storemongo.ProbeReport, d map[string]any, extra string) Result {
	if !rep.OK {
		d["cause"] = rep.Cause
		msg := "cannot reach MongoDB at " + rep.URI + ": " + rep.Message
		if extra != "" {
			msg += "; " + extra
		}
		return fail(msg, rep.Hint, d)
	}
	med := time.Duration(rep.MedianPingMS * float64(time.Millisecond))
	d["median_ping_ms"] = rep.MedianPingMS
	if rep.ServerVersion != "" {
		d["server_version"] = rep.ServerVersion
	}
	ver := rep.ServerVersion
	if ver != "" && majorVersion(ver) > 0 && majorVersion(ver) < 5 {
		return warn(fmt.Sprintf("MongoDB %s is older than 5.0, the oldest the runtime supports", ver), "upgrade MongoDB to 5.0 or newer", d)
	}
	if med > mongoSlowPing {
		return warn(fmt.Sprintf("MongoDB answers slowly: median ping %s over %d pings", med.Round(time.Millisecond), mongoPings),
			"run MongoDB close to the runtime (same host or zone); check its load", d)
	}
	return ok(fmt.Sprintf("MongoDB %s, median ping %s", orDash(ver, "(version unknown)"), med.Round(10*time.Microsecond)), d)
}

// runMongoCompose asks the runtime container itself: `mozaiks healthcheck
// --mongo` runs the store's probe there and prints its report. An image
// without that command falls back to the runtime's own /api/health.
func runMongoCompose(ctx context.Context, env *Env) Result {
	cf, err := env.Compose()
	if err != nil {
		if r := composeLoadFailure(err); r.Severity == Skipped {
			return r
		}
		return skip("needs the compose file, which does not load (see DKR02): " + truncate(err.Error(), 160))
	}
	uri := cf.Services[runtimeService]["MONGO_URI"]
	if uri == "" && env.Config != nil {
		uri = env.Config.MongoURI
	}
	if uri == "" {
		return skip("the runtime service has no MONGO_URI: it uses the embedded store on its volume")
	}
	d := map[string]any{"uri": config.RedactURI(uri), "database": config.DatabaseName(uri)}
	api, err := env.docker()
	if err != nil {
		return skip("needs the Docker engine (see DKR01) to check MongoDB from inside the runtime container")
	}
	list, err := api.ProjectContainers(ctx, cf.Project)
	if err != nil {
		return skip("needs the Docker engine (see DKR01) to check MongoDB from inside the runtime container")
	}
	var rt *ContainerInfo
	byService := map[string]ContainerInfo{}
	for i, c := range list {
		byService[c.Service] = c
		if c.Service == runtimeService {
			rt = &list[i]
		}
	}
	if rt == nil || rt.State != "running" {
		state := "missing"
		if rt != nil {
			state = rt.State
		}
		return skip("the runtime container is " + state + " (see DKR02): MongoDB is checked from inside it")
	}
	d["probed_from"] = "container " + rt.Name
	extra := mongoServiceState(uri, byService, cf)
	res, err := api.Exec(ctx, rt.ID, []string{"/mozaiks", "healthcheck", "--mongo"})
	if err == nil {
		var rep storemongo.ProbeReport
		if json.Unmarshal([]byte(strings.TrimSpace(res.Stdout)), &rep) == nil && rep.URI != "" {
			r := judgeMongo(rep, d, extra)
			if r.Severity == Fail && extra != "" {
				r.Hint = "start it: " + env.upCommand() + "; its last log lines: mozaiks logs " + mongoHost(uri) + " --tail 50"
			}
			return r
		}
	}
	// An older image: the runtime's /api/health says whether its store answers.
	d["probed_from"] = "the runtime's /api/health (its image has no `healthcheck --mongo`)"
	status, _, body, herr := probeGet(ctx, env, env.URL+"/api/health", nil)
	if herr != nil || status != http.StatusOK {
		return skip("cannot ask the runtime (see RT01): its image has no `healthcheck --mongo` and /api/health did not answer")
	}
	var h struct {
		MongoDB struct {
			Status string  `json:"status"`
			PingMS float64 `json:"ping_ms"`
		} `json:"mongodb"`
	}
	if json.Unmarshal(body, &h) != nil {
		return skip("cannot read the runtime's /api/health")
	}
	if h.MongoDB.Status != "ok" {
		msg := "the runtime reports MongoDB at " + config.RedactURI(uri) + " unavailable"
		if extra != "" {
			msg += "; " + extra
		}
		return fail(msg, "mozaiks logs runtime --tail 50 names the cause; upgrade the image for a classified one", d)
	}
	d["median_ping_ms"] = h.MongoDB.PingMS
	return ok(fmt.Sprintf("MongoDB answers the runtime (ping %.1f ms)", h.MongoDB.PingMS), d)
}

// mongoServiceState: when MONGO_URI names a compose service whose container
// is not running, that is the cause to name ("" otherwise).
func mongoServiceState(uri string, byService map[string]ContainerInfo, cf *composeFile) string {
	return serviceState(mongoHost(uri), byService, cf)
}

// serviceState: when host is a compose service whose container is not
// running (or unhealthy), say so ("" otherwise).
func serviceState(host string, byService map[string]ContainerInfo, cf *composeFile) string {
	if _, isService := cf.Services[host]; !isService {
		return ""
	}
	c, ok := byService[host]
	switch {
	case !ok:
		return "service " + host + " has no container (not started)"
	case c.State != "running":
		return fmt.Sprintf("container %s of service %s is %s", c.Name, host, c.State)
	case c.Health == "unhealthy":
		return fmt.Sprintf("container %s of service %s is unhealthy", c.Name, host)
	}
	return ""
}

// mongoHost is the first host of a Mongo URI, without port.
func mongoHost(uri string) string {
	rest := uri
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	rest, _, _ = strings.Cut(rest, "/")
	rest, _, _ = strings.Cut(rest, "?")
	rest, _, _ = strings.Cut(rest, ",")
	if u, err := url.Parse("x://" + rest); err == nil {
		return u.Hostname()
	}
	return rest
}

// upCommand is how this deployment is started.
func (e *Env) upCommand() string {
	cmd := "mozaiks up"
	if e.DeploymentKind() == KindComposeProd {
		cmd += " --prod"
	}
	if e.Dir != "" && e.Dir != "." {
		cmd += " --dir " + e.Dir
	}
	return cmd
}

func majorVersion(v string) int {
	var m int
	_, _ = fmt.Sscanf(v, "%d", &m)
	return m
}
