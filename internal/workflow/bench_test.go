package workflow

import (
	"testing"
)

// BenchmarkExpr compares evaluating a parsed condition (done per handoff
// check) with parsing it (done once, at load).
func BenchmarkExpr(b *testing.B) {
	const src = `${stage} == "review" and (${count} >= 3 or not ${done})`
	vars := map[string]any{"stage": "review", "count": 2.0, "done": false}
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseExpr(src); err != nil {
				b.Fatal(err)
			}
		}
	})
	e, err := ParseExpr(src)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("eval", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !e.Eval(vars) {
				b.Fatal("want true")
			}
		}
	})
}

// BenchmarkLoadSet loads the testdata folders (valid and broken).
func BenchmarkLoadSet(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		LoadSet("testdata/set", nil)
	}
}
