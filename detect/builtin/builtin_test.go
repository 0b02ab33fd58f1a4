package builtin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/detect/builtin"
	"github.com/packer-build/packer/internal/testutil"
)

// TestGoldenPlans plans every fixture under testdata/fixtures and compares
// with testdata/fixtures/NAME.plan.json (go test ./detect/... -update
// rewrites them).
func TestGoldenPlans(t *testing.T) {
	root := filepath.Join(testutil.Root(t), "testdata", "fixtures")
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		n++
		t.Run(e.Name(), func(t *testing.T) {
			dir := filepath.Join(root, e.Name())
			src, opts := fixtureOptions(t, root, e.Name())
			p, err := detect.Run(context.Background(), src, opts, builtin.Providers(), "")
			_ = dir
			if err != nil {
				t.Fatalf("no plan: %v (give the fixture a %s.options.json)", err, e.Name())
			}
			b, err := p.JSON()
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join(root, e.Name()+".plan.json"), b)
		})
	}
	if n < 8 {
		t.Errorf("found %d fixtures, want at least 8", n)
	}
}

// fixtureOptions reads testdata/fixtures/NAME.options.json, when there is
// one: the options the fixture is built with (a workspace's target), and
// files laid over it for planning (lockfiles the e2e tests make at run
// time, in the shape the tool writes, because real ones name the registry).
func fixtureOptions(t *testing.T, root, name string) (fs.FS, detect.Options) {
	t.Helper()
	src := os.DirFS(filepath.Join(root, name))
	b, err := os.ReadFile(filepath.Join(root, name+".options.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return src, detect.Options{}
	}
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		Comment       string            `json:"comment"`
		Target        string            `json:"target"`
		AllowUnlocked bool              `json:"allowUnlocked"`
		Files         map[string]string `json:"files"`
		// Go is the fixture's packer.toml [go] table as the CLI passes
		// it (templates expanded).
		Go detect.GoOptions `json:"go"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatalf("%s.options.json: %v", name, err)
	}
	if len(o.Files) > 0 {
		over := fstest.MapFS{}
		for p, c := range o.Files {
			over[p] = &fstest.MapFile{Data: []byte(c), Mode: 0o644}
		}
		src = overlay{over, src}
	}
	return src, detect.Options{Target: o.Target, AllowUnlocked: o.AllowUnlocked, Go: o.Go}
}

// overlay serves top's files over base's.
type overlay struct{ top, base fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	if f, err := o.top.Open(name); err == nil {
		if st, err := f.Stat(); err == nil && !st.IsDir() {
			return f, nil
		}
		f.Close()
	}
	return o.base.Open(name)
}

func (o overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	ents, err := fs.ReadDir(o.base, name)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, e := range ents {
		seen[e.Name()] = true
	}
	if extra, err := fs.ReadDir(o.top, name); err == nil {
		for _, e := range extra {
			if !seen[e.Name()] && !e.IsDir() {
				ents = append(ents, e)
			}
		}
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}

func (o overlay) Stat(name string) (fs.FileInfo, error) {
	if fi, err := fs.Stat(o.top, name); err == nil && !fi.IsDir() {
		return fi, nil
	}
	return fs.Stat(o.base, name)
}
