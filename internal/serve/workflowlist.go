package serve

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
)

// workflowOrder is the order GET /api/workflows lists workflows in: the
// default workflow (DEFAULT_WORKFLOW) first, then the rest by name. ChatUI
// opens its socket for the first key of that object
// (ChatUI/src/pages/ChatPage.js getDefaultWorkflowFromRegistry: workflows[0].name,
// ChatUI/src/workflows/index.js: Object.entries(workflowConfigs)), while it
// starts the chat for its build default, so the two must agree.
func (s *Server) workflowOrder() []string {
	names := s.workflows.Names() // sorted
	if i := slices.Index(names, s.cfg.DefaultWorkflow); i > 0 {
		names = slices.Concat([]string{names[i]}, names[:i], names[i+1:])
	}
	return names
}

// workflowsConfig is public (ChatUI sends no token) and never carries
// prompts, env values or tool URLs: it is built from workflow.Manifest. The
// object is written key by key because a Go map would sort the keys.
func (s *Server) workflowsConfig(w http.ResponseWriter, r *http.Request) error {
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	for _, name := range s.workflowOrder() {
		m, ok := s.workflows.Manifest(name)
		if !ok {
			continue
		}
		k, err := json.Marshal(name)
		if err != nil {
			return err
		}
		v, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
		n++
	}
	b.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
	return nil
}
