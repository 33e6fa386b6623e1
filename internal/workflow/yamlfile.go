package workflow

import (
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlFile is one parsed YAML file of a workflow folder, with the line of
// every field path so that validation can point at the offending line.
type yamlFile struct {
	name  string // file name within the folder
	shown string // name as diagnostics show it
	lines map[string]int
	diags *[]Diagnostic
	wf    string
}

func (f *yamlFile) line(path string) int {
	for path != "" {
		if l, ok := f.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return f.lines[""]
}

func (f *yamlFile) add(sev, path, format string, args ...any) {
	*f.diags = append(*f.diags, Diagnostic{
		Workflow: f.wf, File: f.shown, Line: f.line(path), Field: path,
		Severity: sev, Message: fmt.Sprintf(format, args...),
	})
}

func (f *yamlFile) errorf(path, format string, args ...any) { f.add(SevError, path, format, args...) }
func (f *yamlFile) warnf(path, format string, args ...any)  { f.add(SevWarning, path, format, args...) }

// loadYAML reads name from fsys into out. A missing optional file leaves out
// untouched and returns a yamlFile with no lines. wrapper is a top-level key
// the original layout sometimes nests everything under (e.g.
// structured_outputs:); namedLists are top-level keys whose value may be a
// mapping of name -> entry instead of a list of entries with a name.
func loadYAML(fsys fs.FS, dir, shownDir, name, wf string, required bool, out any, diags *[]Diagnostic, wrapper string, namedLists ...string) (*yamlFile, bool) {
	f := &yamlFile{name: name, shown: shownDir + "/" + name, lines: map[string]int{}, diags: diags, wf: wf}
	data, err := fs.ReadFile(fsys, dir+"/"+name)
	if errors.Is(err, fs.ErrNotExist) {
		if required {
			f.errorf("", "missing required file")
			return f, false
		}
		return f, true
	}
	if err != nil {
		f.errorf("", "read: %v", err)
		return f, false
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		msg := err.Error()
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = yamlLineRE.ReplaceAllString(msg, "")
		}
		msg = strings.TrimSpace(strings.TrimPrefix(msg, "yaml:"))
		*diags = append(*diags, Diagnostic{Workflow: wf, File: f.shown, Line: line, Severity: SevError, Message: "invalid YAML: " + msg})
		return f, false
	}
	if len(doc.Content) == 0 {
		if required {
			f.errorf("", "file is empty")
			return f, false
		}
		return f, true
	}
	root := doc.Content[0]
	f.lines[""] = root.Line
	if root.Kind != yaml.MappingNode {
		f.errorf("", "want a mapping at the top level, found %s", kindName(root))
		return f, false
	}
	if wrapper != "" && len(root.Content) == 2 && root.Content[0].Value == wrapper && root.Content[1].Kind == yaml.MappingNode {
		root = root.Content[1]
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		for _, k := range namedLists {
			if root.Content[i].Value == k && root.Content[i+1].Kind == yaml.MappingNode {
				root.Content[i+1] = namedMapToList(root.Content[i+1])
			}
		}
	}
	recordLines(root, "", f.lines)
	ok := checkKeys(f, root, reflect.TypeOf(out).Elem(), "")
	if err := root.Decode(out); err != nil {
		ok = false
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				line := 0
				if m := yamlLineRE.FindStringSubmatch(e); m != nil {
					line, _ = strconv.Atoi(m[1])
				}
				*diags = append(*diags, Diagnostic{Workflow: wf, File: f.shown, Line: line, Field: fieldAtLine(f.lines, line), Severity: SevError, Message: strings.TrimSpace(yamlLineRE.ReplaceAllString(e, ""))})
			}
		} else {
			f.errorf("", "%v", err)
		}
	}
	return f, ok
}

var yamlLineRE = regexp.MustCompile(`line (\d+):?`)

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "nothing"
}

// namedMapToList turns {Planner: {...}} into [{name: Planner, ...}], the form
// the loader validates.
func namedMapToList(m *yaml.Node) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: m.Line, Column: m.Column}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		entry := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: k.Line, Column: k.Column}
		nameKey := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "name", Line: k.Line, Column: k.Column}
		entry.Content = append(entry.Content, nameKey, k)
		if v.Kind == yaml.MappingNode {
			entry.Content = append(entry.Content, v.Content...)
		}
		seq.Content = append(seq.Content, entry)
	}
	return seq
}

func recordLines(n *yaml.Node, path string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := joinPath(path, n.Content[i].Value)
			lines[p] = n.Content[i].Line
			recordLines(n.Content[i+1], p, lines)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[p] = c.Line
			recordLines(c, p, lines)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldAtLine finds the deepest field path recorded at line, for yaml.v3
// type errors which carry only a line.
func fieldAtLine(lines map[string]int, line int) string {
	best := ""
	for p, l := range lines {
		if l == line && len(p) > len(best) {
			best = p
		}
	}
	return best
}

// checkKeys warns about mapping keys the struct does not know, and reports
// mappings/lists where the struct wants the other shape. It returns false
// when the shape is wrong.
func checkKeys(f *yamlFile, n *yaml.Node, t reflect.Type, path string) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	ok := true
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return true
			}
			f.errorf(path, "want a mapping, found %s", kindName(n))
			return false
		}
		fields := map[string]reflect.StructField{}
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			tag := strings.Split(sf.Tag.Get("yaml"), ",")[0]
			if tag != "" && tag != "-" {
				fields[tag] = sf
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			sf, known := fields[key]
			p := joinPath(path, key)
			if !known {
				f.warnf(p, "unknown key %q (ignored)", key)
				continue
			}
			if !checkKeys(f, n.Content[i+1], sf.Type, p) {
				ok = false
			}
		}
	case reflect.Slice:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return true
		}
		if n.Kind != yaml.SequenceNode {
			f.errorf(path, "want a list, found %s", kindName(n))
			return false
		}
		for i, c := range n.Content {
			if !checkKeys(f, c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)) {
				ok = false
			}
		}
	case reflect.Map:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return true
		}
		if n.Kind != yaml.MappingNode {
			f.errorf(path, "want a mapping, found %s", kindName(n))
			return false
		}
		if t.Elem().Kind() == reflect.Struct {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if !checkKeys(f, n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value)) {
					ok = false
				}
			}
		}
	}
	return ok
}
