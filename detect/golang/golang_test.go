package golang_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/detect/builtin"
	"github.com/packer-build/packer/detect/golang"
	"github.com/packer-build/packer/internal/testutil"
)

func TestPlanChoices(t *testing.T) {
	main := &fstest.MapFile{Data: []byte("package main\nfunc main() {}\n")}
	lib := &fstest.MapFile{Data: []byte("package lib\n")}
	mod := func(m string) *fstest.MapFile { return &fstest.MapFile{Data: []byte("module " + m + "\n\ngo 1.22\n")} }
	for _, tc := range []struct {
		description string
		fs          fstest.MapFS
		target      string
		wantEntry   string
		wantErr     string
	}{
		{"root main", fstest.MapFS{"go.mod": mod("example.com/app"), "main.go": main}, "", "/app/app", ""},
		{"major version suffix", fstest.MapFS{"go.mod": mod("example.com/app/v3"), "main.go": main}, "", "/app/app", ""},
		{"single cmd", fstest.MapFS{"go.mod": mod("example.com/x"), "cmd/api/main.go": main, "lib.go": lib}, "", "/app/api", ""},
		{"named like module", fstest.MapFS{"go.mod": mod("example.com/api"), "cmd/api/main.go": main, "cmd/tool/main.go": main}, "", "/app/api", ""},
		{"ambiguous", fstest.MapFS{"go.mod": mod("example.com/x"), "cmd/a/main.go": main, "cmd/b/main.go": main}, "", "", "several main packages and none is named like the module (x) (./cmd/a, ./cmd/b): choose the main package to build"},
		{"target", fstest.MapFS{"go.mod": mod("example.com/x"), "cmd/a/main.go": main, "cmd/b/main.go": main}, "./cmd/b", "/app/b", ""},
		{"ambiguous lists nested mains", fstest.MapFS{"go.mod": mod("example.com/x"), "cmd/a/main.go": main, "cmd/b/main.go": main, "cmd/b/help/main.go": main, "tools/gen/main.go": main, "testdata/m/main.go": main, "sub/go.mod": mod("example.com/sub"), "sub/main.go": main}, "", "", "(./cmd/a, ./cmd/b, ./cmd/b/help, ./tools/gen): choose the main package"},
		{"one main, nested elsewhere", fstest.MapFS{"go.mod": mod("example.com/x"), "server/main.go": main, "lib.go": lib}, "", "/app/server", ""},
		{"target not main", fstest.MapFS{"go.mod": mod("example.com/x"), "lib/lib.go": lib}, "./lib", "", "--target \"./lib\" is not a main package"},
		{"target outside", fstest.MapFS{"go.mod": mod("example.com/x")}, "../other", "", "must be a directory inside the module"},
		{"no main", fstest.MapFS{"go.mod": mod("example.com/x"), "lib.go": lib}, "", "", "no main package in this module"},
		{"test files only", fstest.MapFS{"go.mod": mod("example.com/x"), "main_test.go": main}, "", "", "no main package"},
		{"no module line", fstest.MapFS{"go.mod": &fstest.MapFile{Data: []byte("go 1.22\n")}, "main.go": main}, "", "", "go.mod has no module line"},
		{"broken go.mod", fstest.MapFS{"go.mod": &fstest.MapFile{Data: []byte("module (\n")}, "main.go": main}, "", "", "parsing go.mod"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			p, err := golang.Provider{}.Plan(context.Background(), tc.fs, detect.Options{Target: tc.target})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Plan() error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Plan() = %v", err)
			}
			if got := p.Entrypoint[0]; got != tc.wantEntry {
				t.Errorf("entrypoint = %q, want %q", got, tc.wantEntry)
			}
			if err := p.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

func TestFixtureChoosesCmdNamedLikeModule(t *testing.T) {
	p, err := golang.Provider{}.Plan(context.Background(), os.DirFS(testutil.Fixture(t, "go-multi-cmd")), detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Entrypoint[0] != "/app/shop" || !strings.Contains(strings.Join(p.Steps[0].Run, " "), "./cmd/shop") {
		t.Errorf("entrypoint %v run %v", p.Entrypoint, p.Steps[0].Run)
	}
}

func TestNoProvider(t *testing.T) {
	_, err := detect.Run(context.Background(), fstest.MapFS{"README.md": {}}, detect.Options{}, builtin.Providers(), "")
	if err == nil || !strings.Contains(err.Error(), "looked for go.mod (Go)") {
		t.Fatalf("detect.Run() = %v", err)
	}
	_, err = detect.Run(context.Background(), fstest.MapFS{}, detect.Options{}, builtin.Providers(), "cobol")
	if err == nil || !strings.Contains(err.Error(), `unknown provider "cobol"`) {
		t.Fatalf("detect.Run(force cobol) = %v", err)
	}
}

// A main.go with no go.mod is a Go app built as module app; a package.json
// beside it makes the directory Node's.
func TestMainWithoutGoMod(t *testing.T) {
	main := &fstest.MapFile{Data: []byte("package main\n\nfunc main() {}\n")}
	ok, err := golang.Provider{}.Detect(context.Background(), fstest.MapFS{"main.go": main})
	if err != nil || !ok {
		t.Fatalf("Detect(main.go only) = %v, %v", ok, err)
	}
	p, err := golang.Provider{}.Plan(context.Background(), fstest.MapFS{"main.go": main}, detect.Options{})
	if err != nil || p.Steps[0].Files["go.mod"] == "" || p.Entrypoint[0] != "/app/app" {
		t.Fatalf("Plan(main.go only) = %+v, %v", p, err)
	}
	if ok, _ := (golang.Provider{}).Detect(context.Background(), fstest.MapFS{"main.go": main, "package.json": &fstest.MapFile{Data: []byte("{}")}}); ok {
		t.Errorf("Detect claimed a Node.js app with a main.go")
	}
	lib := &fstest.MapFile{Data: []byte("package lib\n")}
	if ok, _ := (golang.Provider{}).Detect(context.Background(), fstest.MapFS{"main.go": lib}); ok {
		t.Errorf("Detect claimed a main.go that is not package main")
	}
}

func TestProcfile(t *testing.T) {
	main := &fstest.MapFile{Data: []byte("package main\n\nfunc main() {}\n")}
	mod := &fstest.MapFile{Data: []byte("module example.com/x\n")}
	for _, tc := range []struct{ procfile, wantEntry, wantErr string }{
		{"web: bin/api --port 9\n", "/app/api --port 9", ""},
		{"web: ./worker\n", "/app/worker", ""},
		{"web: go run ./cmd/api\n", "", "several main packages"},
		{"web: nope\n", "", "runs nope, which is none of this module's main packages (api, worker)"},
		{"web: bin/api --port $PORT\n", "", "needs a shell"},
	} {
		src := fstest.MapFS{"go.mod": mod, "cmd/api/main.go": main, "cmd/worker/main.go": main, "Procfile": &fstest.MapFile{Data: []byte(tc.procfile)}}
		p, err := golang.Provider{}.Plan(context.Background(), src, detect.Options{})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: Plan() = %v, want an error with %q", tc.procfile, err, tc.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(p.Entrypoint, " ") != tc.wantEntry {
			t.Errorf("%q: Plan() = %v, %v; want entrypoint %q", tc.procfile, p, err, tc.wantEntry)
		}
	}
}

func TestGoWork(t *testing.T) {
	main := &fstest.MapFile{Data: []byte("package main\n\nfunc main() {}\n")}
	lib := &fstest.MapFile{Data: []byte("package lib\n")}
	f := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	work := f("go 1.22\n\nuse (\n\t./api\n\t./tool\n\t./lib\n)\n")
	src := fstest.MapFS{"go.work": work, "api/go.mod": f("module example.com/api\n"), "api/main.go": main,
		"tool/go.mod": f("module example.com/tool\n"), "tool/cmd/gen/main.go": main, "lib/go.mod": f("module example.com/lib\n"), "lib/lib.go": lib}
	if _, err := (golang.Provider{}).Plan(context.Background(), src, detect.Options{}); err == nil || !strings.Contains(err.Error(), "several modules with main packages (./api, ./tool)") {
		t.Errorf("ambiguous go.work: %v", err)
	}
	for target, want := range map[string]string{"./api": "./api", "./tool/cmd/gen": "./tool/cmd/gen", "tool": "./tool/cmd/gen"} {
		p, err := golang.Provider{}.Plan(context.Background(), src, detect.Options{Target: target})
		if err != nil {
			t.Errorf("--target %s: %v", target, err)
			continue
		}
		if run := p.Steps[0].Run; run[len(run)-1] != want {
			t.Errorf("--target %s builds %s, want %s", target, run[len(run)-1], want)
		}
	}
}
