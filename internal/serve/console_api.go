package serve

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/serve/console"
	"github.com/mozaiks/mozaiks/internal/workflow"
)

// consoleRoutes mounts the browser console at / (unless --console=false)
// and the small read-only API it needs beyond the public one: what the page
// must know before the first chat (auth on or off, default app and workflow,
// whether a model is configured, each UI tool's JSON schema) and the
// operator view (admin.go).
func (s *Server) consoleRoutes(mux *http.ServeMux) {
	if s.cfg.Console {
		console.Register(mux)
	}
	mux.HandleFunc("GET /api/console/info", s.handle(s.consoleInfo))
	mux.HandleFunc("GET /api/admin/overview", s.handle(s.adminOverview))
	mux.HandleFunc("GET /api/admin/sessions", s.handle(s.adminSessions))
}

// sameOrigin reports whether the page that opened a WebSocket was served by
// this server (the console at /), which needs no CORS entry: the origin is
// the request's own host, or MOZAIKS_PUBLIC_URL (a proxy may rewrite Host).
func (s *Server) sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if s.cfg.PublicURL == "" {
		return false
	}
	pu, err := url.Parse(s.cfg.PublicURL)
	if err != nil {
		return false
	}
	pub, err1 := config.NormalizeOrigin(pu.Scheme + "://" + pu.Host)
	o, err2 := config.NormalizeOrigin(origin)
	return err1 == nil && err2 == nil && pub == o
}

type consoleInfo struct {
	Version         string            `json:"version"`
	AuthEnabled     bool              `json:"auth_enabled"`
	UserIDClaim     string            `json:"user_id_claim"`
	DefaultAppID    string            `json:"default_app_id"`
	DefaultWorkflow string            `json:"default_workflow"`
	LLM             llmHealth         `json:"llm"`
	Workflows       []consoleWorkflow `json:"workflows"` // default first, then by name
}

type consoleWorkflow struct {
	Name                 string          `json:"name"`
	Description          string          `json:"description"`
	StartupMode          string          `json:"startup_mode"`
	HumanInTheLoop       bool            `json:"human_in_the_loop"`
	InitialMessageToUser string          `json:"initial_message_to_user,omitempty"`
	UITools              []consoleUITool `json:"ui_tools"`
}

// consoleUITool is what the page needs to render a UI tool generically: the
// schema of the payload the agent sends, and the schema of the answer the
// workflow reads back (the ui_response triggers of its context variables).
type consoleUITool struct {
	Name        string          `json:"name"`
	Component   string          `json:"component"`
	Display     string          `json:"display"`
	Agent       string          `json:"agent"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
	Response    map[string]any  `json:"response"`
}

// consoleInfo is public, like GET /api/workflows: nothing in it is secret
// (no prompts, tool URLs, headers or env values).
func (s *Server) consoleInfo(w http.ResponseWriter, r *http.Request) error {
	info := consoleInfo{
		Version:         s.version(),
		AuthEnabled:     s.auth != nil,
		UserIDClaim:     s.cfg.AuthUserIDClaim,
		DefaultAppID:    s.cfg.DefaultAppID,
		DefaultWorkflow: s.defaultWorkflow(),
		LLM:             s.llmStatus(),
		Workflows:       []consoleWorkflow{},
	}
	for _, name := range s.workflowOrder() {
		wf, ok := s.workflows.Get(name)
		if !ok {
			continue
		}
		info.Workflows = append(info.Workflows, consoleWorkflowOf(wf))
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

func (s *Server) llmStatus() llmHealth {
	h := llmHealth{Provider: s.llm.Provider(), Model: s.cfg.DefaultLLMModel, Configured: s.llm.Configured()}
	if h.Provider == "echo" {
		h.Model = "echo"
		h.Note = "offline echo provider: replies are canned, not from a model"
	}
	return h
}

// defaultWorkflow is the workflow the console preselects: the first that
// GET /api/workflows lists (DEFAULT_WORKFLOW when it is loaded).
func (s *Server) defaultWorkflow() string {
	if names := s.workflowOrder(); len(names) > 0 {
		return names[0]
	}
	return s.cfg.DefaultWorkflow
}

func consoleWorkflowOf(wf *workflow.Workflow) consoleWorkflow {
	m := consoleWorkflow{
		Name:                 wf.Name,
		Description:          wf.Orchestrator.Description,
		StartupMode:          wf.Orchestrator.StartupMode,
		HumanInTheLoop:       wf.HumanInTheLoop(),
		InitialMessageToUser: wf.Orchestrator.InitialMessageToUser,
		UITools:              []consoleUITool{},
	}
	for i := range wf.Tools {
		t := &wf.Tools[i]
		if t.Kind != workflow.ToolUI {
			continue
		}
		params := t.Schema()
		if len(params) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		m.UITools = append(m.UITools, consoleUITool{
			Name:        t.Name,
			Component:   t.Component,
			Display:     t.Display,
			Agent:       t.Agent,
			Description: t.Description,
			Parameters:  params,
			Response:    responseSchema(wf, t.Name),
		})
	}
	return m
}

// responseSchema builds a JSON Schema of the answer fields the workflow
// reads from a UI tool: one property per ui_response trigger, typed by the
// context variable it sets. None is required: each trigger reads its field
// on its own (approval reads "approved" from some clients, "action" from
// ChatUI's ActionPlan).
func responseSchema(wf *workflow.Workflow, tool string) map[string]any {
	props := map[string]any{}
	for _, cv := range wf.ContextVars {
		for _, tr := range cv.Source.Triggers {
			if tr.Type != "ui_response" || tr.Tool != tool || tr.ResponseKey == "" {
				continue
			}
			typ := cv.Type
			switch typ {
			case "list":
				typ = "array"
			case "":
				typ = "string"
			}
			props[tr.ResponseKey] = map[string]any{"type": typ, "description": cv.Description}
		}
	}
	return map[string]any{"type": "object", "properties": props}
}
