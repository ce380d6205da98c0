package control

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPure keeps the package a pure state machine: it imports only
// packages that compute (no net, os, log, gRPC, memberlist, no sync: no
// goroutines to guard against), and of time it uses only durations, never
// the clock or a timer.
func TestPure(t *testing.T) {
	allowed := []string{"cmp", "errors", "fmt", "maps", "math", "slices", "sort", "strconv", "strings", "time"}
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if !slices.Contains(allowed, imp) {
			t.Errorf("imports %q; a pure state machine imports only %v", imp, allowed)
		}
	}
	durations := []string{"Duration", "Nanosecond", "Microsecond", "Millisecond", "Second", "Minute", "Hour"}
	fset := token.NewFileSet()
	for _, name := range pkg.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(pkg.Dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "time" && !slices.Contains(durations, n.Sel.Name) {
					t.Errorf("%v: uses time.%s; only durations are passed in", fset.Position(n.Pos()), n.Sel.Name)
				}
			case *ast.GoStmt:
				t.Errorf("%v: starts a goroutine", fset.Position(n.Pos()))
			case *ast.Ident:
				if strings.HasPrefix(n.Name, "println") || n.Name == "print" {
					t.Errorf("%v: prints", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
}
