package workflow

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Expr is a parsed context expression such as `${stage} == "review" and not ${done}`.
// It is parsed once at load time, so a typo is reported with its file and line
// instead of silently never matching at run time.
type Expr struct {
	src  string
	root node
	vars []string
}

// String returns the expression as written.
func (e *Expr) String() string { return e.src }

// Vars lists the variables the expression reads, in order of first use.
func (e *Expr) Vars() []string { return e.vars }

// Eval evaluates the expression against vars (a missing variable is null) and
// reports whether the result is truthy.
func (e *Expr) Eval(vars map[string]any) bool { return truthy(e.root.eval(vars)) }

// ExprError is a syntax error with the 1-based column where it was found.
type ExprError struct {
	Col int
	Msg string
}

func (e *ExprError) Error() string { return fmt.Sprintf("column %d: %s", e.Col, e.Msg) }

// ParseExpr parses a context expression. Precedence, loosest first: or, and,
// comparison, not.
func ParseExpr(src string) (*Expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	root, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, &ExprError{Col: t.col, Msg: fmt.Sprintf("unexpected %s", t)}
	}
	e := &Expr{src: src, root: root}
	seen := map[string]bool{}
	for _, t := range toks {
		if t.kind == tVar && !seen[t.text] {
			seen[t.text] = true
			e.vars = append(e.vars, t.text)
		}
	}
	return e, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tVar
	tString
	tNumber
	tTrue
	tFalse
	tNull
	tAnd
	tOr
	tNot
	tOp // comparison operator; text holds it
	tLParen
	tRParen
)

type token struct {
	kind tokKind
	text string
	num  float64
	col  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tVar:
		return "${" + t.text + "}"
	case tString:
		return strconv.Quote(t.text)
	default:
		return strconv.Quote(t.text)
	}
}

func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		col := i + 1
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '$':
			if i+1 >= len(src) || src[i+1] != '{' {
				return nil, &ExprError{Col: col, Msg: "expected { after $"}
			}
			end := strings.IndexByte(src[i:], '}')
			if end < 0 {
				return nil, &ExprError{Col: col, Msg: "unterminated ${"}
			}
			name := strings.TrimSpace(src[i+2 : i+end])
			if !isIdent(name) {
				return nil, &ExprError{Col: col, Msg: fmt.Sprintf("invalid variable name %q", name)}
			}
			toks = append(toks, token{kind: tVar, text: name, col: col})
			i += end + 1
		case c == '"' || c == '\'':
			s, n, err := lexString(src[i:], col)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tString, text: s, col: col})
			i += n
		case c == '(':
			toks = append(toks, token{kind: tLParen, text: "(", col: col})
			i++
		case c == ')':
			toks = append(toks, token{kind: tRParen, text: ")", col: col})
			i++
		case c == '&' || c == '|':
			if i+1 >= len(src) || src[i+1] != c {
				return nil, &ExprError{Col: col, Msg: fmt.Sprintf("unexpected %q (did you mean %c%c?)", c, c, c)}
			}
			k := tAnd
			if c == '|' {
				k = tOr
			}
			toks = append(toks, token{kind: k, text: src[i : i+2], col: col})
			i += 2
		case c == '=' || c == '!' || c == '<' || c == '>':
			op := string(c)
			if i+1 < len(src) && src[i+1] == '=' {
				op += "="
			}
			switch op {
			case "=":
				return nil, &ExprError{Col: col, Msg: `unexpected "=" (use == to compare)`}
			case "!":
				toks = append(toks, token{kind: tNot, text: "!", col: col})
			default:
				toks = append(toks, token{kind: tOp, text: op, col: col})
			}
			i += len(op)
		case c == '-' || c == '.' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(src) && (isDigit(src[j]) || src[j] == '.' || src[j] == 'e' || src[j] == 'E' ||
				((src[j] == '-' || src[j] == '+') && (src[j-1] == 'e' || src[j-1] == 'E'))) {
				j++
			}
			f, err := strconv.ParseFloat(src[i:j], 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, &ExprError{Col: col, Msg: fmt.Sprintf("invalid number %q", src[i:j])}
			}
			toks = append(toks, token{kind: tNumber, text: src[i:j], num: f, col: col})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentChar(src[j]) {
				j++
			}
			word := src[i:j]
			var k tokKind
			switch strings.ToLower(word) {
			case "and":
				k = tAnd
			case "or":
				k = tOr
			case "not":
				k = tNot
			case "true":
				k = tTrue
			case "false":
				k = tFalse
			case "null", "none", "nil":
				k = tNull
			default:
				return nil, &ExprError{Col: col, Msg: fmt.Sprintf("unknown word %q (quote strings, write variables as ${%s})", word, word)}
			}
			toks = append(toks, token{kind: k, text: word, col: col})
			i = j
		default:
			return nil, &ExprError{Col: col, Msg: fmt.Sprintf("unexpected character %q", c)}
		}
	}
	return append(toks, token{kind: tEOF, col: len(src) + 1}), nil
}

// lexString reads a quoted string starting at s[0]; \\, \" and \' escape.
func lexString(s string, col int) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				default:
					b.WriteByte(s[i])
				}
			}
		case q:
			return b.String(), i + 1, nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, &ExprError{Col: col, Msg: "unterminated string"}
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }

func isIdent(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token { t := p.toks[p.pos]; p.pos++; return t }

func (p *parser) parseOr() (node, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tOr {
		p.next()
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		left = orNode{left, right}
	}
	return left, nil
}

func (p *parser) parseAnd() (node, error) {
	left, err := p.parseCmp()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tAnd {
		p.next()
		right, err := p.parseCmp()
		if err != nil {
			return nil, err
		}
		left = andNode{left, right}
	}
	return left, nil
}

func (p *parser) parseCmp() (node, error) {
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	if p.peek().kind == tOp {
		op := p.next()
		right, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		if t := p.peek(); t.kind == tOp {
			return nil, &ExprError{Col: t.col, Msg: fmt.Sprintf("comparisons cannot be chained: use and between them (at %s)", t)}
		}
		return cmpNode{op: op.text, l: left, r: right}, nil
	}
	return left, nil
}

func (p *parser) parseUnary() (node, error) {
	if p.peek().kind == tNot {
		p.next()
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (node, error) {
	t := p.next()
	switch t.kind {
	case tVar:
		return varNode(t.text), nil
	case tString:
		return litNode{t.text}, nil
	case tNumber:
		return litNode{t.num}, nil
	case tTrue:
		return litNode{true}, nil
	case tFalse:
		return litNode{false}, nil
	case tNull:
		return litNode{nil}, nil
	case tLParen:
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, &ExprError{Col: c.col, Msg: fmt.Sprintf("expected ) but found %s", c)}
		}
		return x, nil
	default:
		return nil, &ExprError{Col: t.col, Msg: fmt.Sprintf("expected a value but found %s", t)}
	}
}

type node interface{ eval(vars map[string]any) any }

type (
	varNode string
	litNode struct{ v any }
	notNode struct{ x node }
	andNode struct{ l, r node }
	orNode  struct{ l, r node }
	cmpNode struct {
		op   string
		l, r node
	}
)

func (n varNode) eval(vars map[string]any) any { return normalize(vars[string(n)]) }
func (n litNode) eval(map[string]any) any      { return n.v }
func (n notNode) eval(v map[string]any) any    { return !truthy(n.x.eval(v)) }
func (n andNode) eval(v map[string]any) any    { return truthy(n.l.eval(v)) && truthy(n.r.eval(v)) }
func (n orNode) eval(v map[string]any) any     { return truthy(n.l.eval(v)) || truthy(n.r.eval(v)) }

func (n cmpNode) eval(vars map[string]any) any {
	l, r := n.l.eval(vars), n.r.eval(vars)
	switch n.op {
	case "==":
		return equal(l, r)
	case "!=":
		return !equal(l, r)
	}
	c, ok := compare(l, r)
	if !ok {
		return false // ordering across types is never true
	}
	switch n.op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	default:
		return c >= 0
	}
}

// normalize maps Go numeric types to float64 so that values from YAML, JSON
// and the environment compare alike.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	case float32:
		return float64(x)
	case uint:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v
}

func equal(l, r any) bool {
	switch a := l.(type) {
	case nil:
		return r == nil
	case float64:
		switch b := r.(type) {
		case float64:
			return a == b
		case string: // environment-sourced values are strings
			f, err := strconv.ParseFloat(strings.TrimSpace(b), 64)
			return err == nil && f == a
		}
	case string:
		switch b := r.(type) {
		case string:
			return a == b
		case float64:
			return equal(b, a)
		case bool:
			return strings.EqualFold(a, strconv.FormatBool(b))
		}
	case bool:
		switch b := r.(type) {
		case bool:
			return a == b
		case string:
			return equal(b, a)
		}
	}
	return false
}

func compare(l, r any) (int, bool) {
	switch a := l.(type) {
	case float64:
		b, ok := r.(float64)
		if !ok {
			s, isStr := r.(string)
			if !isStr {
				return 0, false
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return 0, false
			}
			b = f
		}
		switch {
		case a < b:
			return -1, true
		case a > b:
			return 1, true
		}
		return 0, true
	case string:
		switch b := r.(type) {
		case string:
			return strings.Compare(a, b), true
		case float64:
			c, ok := compare(b, a)
			return -c, ok
		}
	}
	return 0, false
}

func truthy(v any) bool {
	switch x := normalize(v).(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != "" && !strings.EqualFold(x, "false") && x != "0"
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}
