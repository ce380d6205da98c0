package control

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestPure keeps the package a pure state machine: it imports only
// packages that compute (no net, os, log, gRPC, memberlist, no sync: no
// goroutines to guard against), of time it uses only durations, never the
// clock or a timer, and it prints nothing; whatever name a file imports
// time or fmt under.
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
	// ok says which names of a package a pure machine may use.
	ok := map[string]func(string) bool{
		"time": func(name string) bool {
			return slices.Contains([]string{"Duration", "Nanosecond", "Microsecond", "Millisecond", "Second", "Minute", "Hour"}, name)
		},
		"fmt": func(name string) bool { return !strings.HasPrefix(name, "Print") },
	}
	fset := token.NewFileSet()
	for _, name := range pkg.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(pkg.Dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		// paths holds the packages of ok by the name this file gives them.
		paths := map[string]string{}
		for _, spec := range f.Imports {
			path, _ := strconv.Unquote(spec.Path.Value)
			if ok[path] == nil {
				continue
			}
			local := path
			if spec.Name != nil {
				local = spec.Name.Name
			}
			if local == "." {
				t.Errorf("%v: imports %s into the file's scope; name it", fset.Position(spec.Pos()), path)
			}
			paths[local] = path
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if x, isIdent := n.X.(*ast.Ident); isIdent && paths[x.Name] != "" && !ok[paths[x.Name]](n.Sel.Name) {
					t.Errorf("%v: uses %s.%s; a pure machine reads no clock, arms no timer and prints nothing", fset.Position(n.Pos()), paths[x.Name], n.Sel.Name)
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
