package builder_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/layers"
)

// TestCachedDevDependenciesStayUnchanged: a build step gets the cached
// dev dependencies as hard links to the cache's extracted copy. A step
// that writes into one of those files in place changes its own build
// only: the copy is discarded and the next build sees the dependencies
// as they were installed. Steps that add or replace files (what bundlers
// and package managers do) leave the copy in use, and a copy changed
// behind packer's back (a killed build) is extracted again.
func TestCachedDevDependenciesStayUnchanged(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "lock"), "dep@1\n")
	writeFile(t, filepath.Join(dir, "src/index.js"), "v1")
	var mode string // what the build step does to the dev dependencies
	var seen string // the dev dependency's content the build step found
	fake := &fakeExecutor{probe: "tool 1.0\n", steps: map[string]func(builder.StepRun) error{
		"deps": func(r builder.StepRun) error {
			return os.WriteFile(filepath.Join(mkdir(r.Dir, ".out/deps/dep"), "index.js"), []byte("prod"), 0o644)
		},
		"devdeps": func(r builder.StepRun) error {
			return os.WriteFile(filepath.Join(mkdir(r.Dir, ".out/dev/compiler"), "index.js"), []byte("dev"), 0o644)
		},
		"build": func(r builder.StepRun) error {
			dep := filepath.Join(r.Dir, ".out/dev/compiler/index.js")
			b, err := os.ReadFile(dep)
			if err != nil {
				return err
			}
			seen = string(b)
			switch mode {
			case "write in place":
				f, err := os.OpenFile(dep, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					return err
				}
				f.WriteString(" patched by the build")
				f.Close()
			case "add and replace":
				os.WriteFile(filepath.Join(mkdir(r.Dir, ".out/dev/.cache"), "babel.json"), []byte("{}"), 0o644)
				tmp := dep + ".tmp"
				os.WriteFile(tmp, []byte("replaced"), 0o644)
				if err := os.Rename(tmp, dep); err != nil {
					return err
				}
			}
			src, _ := os.ReadFile(filepath.Join(r.Dir, "src/index.js"))
			return os.WriteFile(filepath.Join(mkdir(r.Dir, "dist"), "app"), src, 0o755)
		},
	}}
	cacheDir := t.TempDir()
	store, err := layers.NewStore(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	build := func() string {
		t.Helper()
		n++
		writeFile(t, filepath.Join(dir, "src/index.js"), strings.Repeat("v", n)) // a source change: build runs, devdeps cached
		var log bytes.Buffer
		if _, _, err := builder.Build(t.Context(), dir, stepPlan(), builder.Options{
			Platforms: []v1.Platform{amd64}, Store: store, Version: "test", Log: &log, Executor: fake,
		}); err != nil {
			t.Fatalf("Build() = %v\n%s", err, log.String())
		}
		return log.String()
	}
	trees := func() []string {
		m, _ := filepath.Glob(filepath.Join(cacheDir, "trees", "*", "tree", "compiler", "index.js"))
		return m
	}

	log := build() // installs, and keeps the dev dependencies as the extracted copy
	if !strings.Contains(log, "step devdeps: its output kept as the cache's extracted copy") || len(trees()) != 1 {
		t.Fatalf("the cold build kept no copy of the dev dependencies (trees %v); log:\n%s", trees(), log)
	}
	log = build()
	if !strings.Contains(log, "linked from the cache's extracted copy") || seen != "dev" || len(trees()) != 1 {
		t.Fatalf("second build: saw %q, trees %v; log:\n%s", seen, trees(), log)
	}
	kept, _ := os.Stat(trees()[0])

	mode = "add and replace"
	log = build()
	if strings.Contains(log, "warning") || len(trees()) != 1 {
		t.Fatalf("adding and replacing files was taken for a write into the cache; log:\n%s", log)
	}
	if now, _ := os.Stat(trees()[0]); !os.SameFile(kept, now) {
		t.Errorf("the extracted copy was made again though the build did not write into it")
	}

	mode = "write in place"
	log = build()
	if seen != "dev" || !strings.Contains(log, "warning: step build wrote into compiler/index.js") || len(trees()) != 0 {
		t.Fatalf("a write in place: saw %q, trees %v; log:\n%s", seen, trees(), log)
	}
	mode = ""
	log = build()
	if seen != "dev" {
		t.Errorf("after a build wrote into the cached dev dependencies, the next build saw %q, not what was installed", seen)
	}

	// Changed behind packer's back (a build killed before its check).
	if err := os.WriteFile(trees()[0], []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	log = build()
	if seen != "dev" || !strings.Contains(log, "changed since it was made") {
		t.Errorf("a changed extracted copy was used: saw %q; log:\n%s", seen, log)
	}
	if got := fake.takeRan(); strings.Count(strings.Join(got, " "), "devdeps") != 1 {
		t.Errorf("the dev dependencies were installed again: %v", got)
	}

	// A cold build whose build step writes into the copy it just kept.
	cacheDir = t.TempDir()
	if store, err = layers.NewStore(cacheDir); err != nil {
		t.Fatal(err)
	}
	mode = "write in place"
	log = build()
	if !strings.Contains(log, "warning: step build wrote into compiler/index.js") || len(trees()) != 0 {
		t.Fatalf("a cold build's write into its kept copy: trees %v; log:\n%s", trees(), log)
	}
	mode = ""
	log = build()
	if seen != "dev" || !strings.Contains(log, "linked from the cache's extracted copy") {
		t.Errorf("after the cold build wrote into its kept copy, the next build saw %q; log:\n%s", seen, log)
	}
}
