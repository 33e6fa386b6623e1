package workflow

import (
	"strings"
	"testing"
)

func TestExprEval(t *testing.T) {
	t.Parallel()
	vars := map[string]any{
		"stage": "review", "count": 3, "ratio": 0.5, "done": true, "off": false,
		"empty": "", "envnum": "42", "name": "O'Brien",
	}
	cases := []struct {
		src  string
		want bool
	}{
		{`${stage} == "review"`, true},
		{`${stage} == 'review'`, true},
		{`${stage} != "review"`, false},
		{`${count} == 3`, true},
		{`${count} > 2`, true},
		{`${count} >= 3`, true},
		{`${count} < 3`, false},
		{`${count} <= 2.5`, false},
		{`${ratio} < 1`, true},
		{`${envnum} == 42`, true}, // env values are strings
		{`${envnum} > 40`, true},
		{`${done}`, true},
		{`${done} == true`, true},
		{`${done} == True`, true},
		{`${off} == false`, true},
		{`not ${off}`, true},
		{`!${done}`, false},
		{`${missing} == null`, true},
		{`${missing} == None`, true},
		{`${missing}`, false},
		{`${missing} > 1`, false},
		{`${missing} != "x"`, true},
		{`${empty}`, false},
		{`${stage} == "review" and ${count} > 5`, false},
		{`${stage} == "review" && ${count} > 2`, true},
		{`${stage} == "draft" or ${done}`, true},
		{`${stage} == "draft" || ${off}`, false},
		// and binds tighter than or
		{`${done} or ${off} and ${off}`, true},
		{`(${done} or ${off}) and ${off}`, false},
		// not binds tighter than comparison: (not stage) == false
		{`not ${stage} == false`, true},
		{`not (${stage} == "draft")`, true},
		{`NOT ${off} AND ${done}`, true},
		{`${name} == "O'Brien"`, true},
		{`${name} == 'O\'Brien'`, true},
		{`"b" > "a"`, true},
		{`-1 < 0`, true},
		{`1e3 == 1000`, true},
		{`${stage} > 3`, false}, // ordering across types is never true
		{`true`, true},
		{`null`, false},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			e, err := ParseExpr(c.src)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := e.Eval(vars); got != c.want {
				t.Errorf("Eval = %v, want %v", got, c.want)
			}
		})
	}
}

func TestExprSyntaxErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		src  string
		col  int
		frag string
	}{
		{`${stage} = "x"`, 10, "use =="},
		{`${stage == "x"`, 1, "unterminated ${"},
		{`${a b} == 1`, 1, "invalid variable name"},
		{`${stage} == "x`, 13, "unterminated string"},
		{`${stage} == review`, 13, "unknown word"},
		{`(${a} == 1`, 11, "expected )"},
		{`${a} == 1)`, 10, "unexpected"},
		{`${a} ==`, 8, "expected a value"},
		{`${a} & ${b}`, 6, "&&"},
		{`1 < ${a} < 3`, 10, "chained"},
		{`$a == 1`, 1, "expected {"},
		{``, 1, "expected a value"},
		{`${a} == 1 and`, 14, "expected a value"},
		{`${a} == 1.2.3`, 9, "invalid number"},
		{`${a} # 1`, 6, "unexpected character"},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			_, err := ParseExpr(c.src)
			ee, ok := err.(*ExprError)
			if !ok {
				t.Fatalf("ParseExpr(%q) error = %v, want *ExprError", c.src, err)
			}
			if ee.Col != c.col || !strings.Contains(ee.Msg, c.frag) {
				t.Errorf("error = %v (col %d), want col %d containing %q", ee, ee.Col, c.col, c.frag)
			}
		})
	}
}

func TestExprVars(t *testing.T) {
	t.Parallel()
	e, err := ParseExpr(`${a} == 1 or (${b} and not ${a})`)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.Vars(), ","); got != "a,b" {
		t.Errorf("Vars = %s, want a,b", got)
	}
}
