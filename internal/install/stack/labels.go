package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// The labels docker compose puts on what it creates; using the same ones is
// what lets `docker compose ps/down` and `mozaiks status/down` see one project.
const (
	LabelProject     = "com.docker.compose.project"
	LabelService     = "com.docker.compose.service"
	LabelNumber      = "com.docker.compose.container-number"
	LabelOneoff      = "com.docker.compose.oneoff"
	LabelConfigHash  = "com.docker.compose.config-hash"
	LabelImage       = "com.docker.compose.image"
	LabelWorkingDir  = "com.docker.compose.project.working_dir"
	LabelConfigFiles = "com.docker.compose.project.config_files"
	LabelDependsOn   = "com.docker.compose.depends_on"
	LabelNetwork     = "com.docker.compose.network"
	LabelVolume      = "com.docker.compose.volume"
	LabelVersion     = "com.docker.compose.version"
)

// composeVersion is written in LabelVersion; compose only displays it.
const composeVersion = "2.30.0"

func projectFilter(project string) map[string]string {
	return map[string]string{LabelProject: project}
}

func serviceFilter(project, service string) map[string]string {
	return map[string]string{LabelProject: project, LabelService: service, LabelOneoff: "False"}
}

// containerLabels are the labels of service s's container number 1.
func containerLabels(p *Project, s types.ServiceConfig, hash, imageID string) map[string]string {
	l := make(map[string]string, len(s.Labels)+10)
	for k, v := range s.Labels {
		l[k] = v
	}
	var deps []string
	for d, dep := range s.DependsOn {
		deps = append(deps, fmt.Sprintf("%s:%s:%t", d, dep.Condition, dep.Restart))
	}
	l[LabelProject] = p.Name
	l[LabelService] = s.Name
	l[LabelNumber] = "1"
	l[LabelOneoff] = "False"
	l[LabelConfigHash] = hash
	l[LabelImage] = imageID
	l[LabelWorkingDir] = p.WorkingDir
	l[LabelConfigFiles] = strings.Join(p.ComposeFiles, ",")
	l[LabelDependsOn] = strings.Join(sortedCopy(deps), ",")
	l[LabelVersion] = composeVersion
	return l
}

// ConfigHash hashes a service's configuration as compose-go normalised it,
// leaving out what does not change the container itself (how many to run,
// what it waits for, when to pull), so only a real change recreates it.
func ConfigHash(s types.ServiceConfig) (string, error) {
	c := s
	c.DependsOn = nil
	c.Scale = nil
	c.PullPolicy = ""
	c.Profiles = nil
	c.Build = nil
	if c.Deploy != nil {
		d := *c.Deploy
		d.Replicas = nil
		c.Deploy = &d
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("hash service %s: %w", s.Name, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
