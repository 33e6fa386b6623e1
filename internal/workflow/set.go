package workflow

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Set is the workflows a runtime serves: the built-in examples, overridden by
// folders of the same name on disk. It is immutable once loaded.
type Set struct {
	byName map[string]*Workflow
}

// LoadSet loads every workflow folder under dir (which may be "" or absent)
// and under builtin (which may be nil). Broken folders are reported and
// skipped; the others load. A folder on disk replaces a built-in of the same
// name.
func LoadSet(dir string, builtin fs.FS) (*Set, []Diagnostic) {
	s := &Set{byName: map[string]*Workflow{}}
	var diags []Diagnostic
	if builtin != nil {
		diags = append(diags, s.loadFS(builtin, "builtin:")...)
	}
	if dir != "" {
		st, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			diags = append(diags, Diagnostic{File: dir, Severity: SevError, Message: "read workflows directory: " + err.Error()})
		case !st.IsDir():
			diags = append(diags, Diagnostic{File: dir, Severity: SevError, Message: "not a directory"})
		default:
			diags = append(diags, s.loadFS(os.DirFS(dir), filepath.ToSlash(filepath.Clean(dir))+"/")...)
		}
	}
	return s, diags
}

func (s *Set) loadFS(fsys fs.FS, prefix string) []Diagnostic {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return []Diagnostic{{File: prefix, Severity: SevError, Message: "read workflows: " + err.Error()}}
	}
	var diags []Diagnostic
	for _, e := range entries {
		if !e.IsDir() || e.Name()[0] == '.' || e.Name()[0] == '_' {
			continue
		}
		if _, err := fs.Stat(fsys, e.Name()+"/orchestrator.yaml"); err != nil {
			if _, err2 := fs.Stat(fsys, e.Name()+"/agents.yaml"); err2 != nil {
				continue // not a workflow folder (e.g. shared assets)
			}
		}
		wf, ds := load(fsys, e.Name(), prefix+e.Name(), e.Name())
		diags = append(diags, ds...)
		if wf != nil {
			s.byName[wf.Name] = wf
		}
	}
	return diags
}

// Get returns the named workflow.
func (s *Set) Get(name string) (*Workflow, bool) {
	if s == nil {
		return nil, false
	}
	wf, ok := s.byName[name]
	return wf, ok
}

// Names lists the loaded workflows, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	return sortedKeys(s.byName)
}

// Manifest is the public description of a workflow served by GET
// /api/workflows. It never carries prompts, tool URLs, headers or env values.
type Manifest struct {
	WorkflowName         string       `json:"workflow_name"`
	Description          string       `json:"description,omitempty"`
	StartupMode          string       `json:"startup_mode"`
	HumanInTheLoop       bool         `json:"human_in_the_loop"`
	InitialMessageToUser string       `json:"initial_message_to_user"`
	VisualAgents         []string     `json:"visual_agents"`
	EntryPoint           string       `json:"entry_point"`
	Agents               []string     `json:"agents"`
	Tools                []UIManifest `json:"tools"`
}

// UIManifest describes one UI tool for the client.
type UIManifest struct {
	UIToolID  string `json:"ui_tool_id"`
	Component string `json:"component"`
	Mode      string `json:"mode"`
	Agent     string `json:"agent"`
	Workflow  string `json:"workflow"`
}

// Manifest returns the public view of the named workflow.
func (s *Set) Manifest(name string) (Manifest, bool) {
	wf, ok := s.Get(name)
	if !ok {
		return Manifest{}, false
	}
	visual := wf.UI.VisualAgents
	if len(visual) == 0 {
		visual = wf.Orchestrator.VisualAgents
	}
	if len(visual) == 0 {
		visual = wf.AgentNames()
	}
	m := Manifest{
		WorkflowName:         wf.Name,
		Description:          wf.Orchestrator.Description,
		StartupMode:          wf.Orchestrator.StartupMode,
		HumanInTheLoop:       wf.HumanInTheLoop(),
		InitialMessageToUser: wf.Orchestrator.InitialMessageToUser,
		VisualAgents:         append([]string(nil), visual...),
		EntryPoint:           wf.Orchestrator.InitialAgent,
		Agents:               wf.AgentNames(),
		Tools:                []UIManifest{},
	}
	for _, t := range wf.Tools {
		if t.Kind == ToolUI {
			m.Tools = append(m.Tools, UIManifest{UIToolID: t.Name, Component: t.Component, Mode: t.Display, Agent: t.Agent, Workflow: wf.Name})
		}
	}
	sort.SliceStable(m.Tools, func(i, j int) bool { return m.Tools[i].UIToolID < m.Tools[j].UIToolID })
	return m, true
}

// IsWorkflowDir reports whether dir looks like one workflow folder rather
// than a directory of them.
func IsWorkflowDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "orchestrator.yaml"))
	return err == nil
}

// LoadDir loads the single workflow folder dir; the folder name is the
// workflow name. It returns nil when the folder has errors.
func LoadDir(dir string) (*Workflow, []Diagnostic) {
	clean := filepath.Clean(dir)
	parent, base := filepath.Dir(clean), filepath.Base(clean)
	return load(os.DirFS(parent), base, filepath.ToSlash(clean), base)
}
