package builtin_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

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
			p, err := detect.Run(context.Background(), os.DirFS(dir), detect.Options{}, builtin.Providers(), "")
			var b []byte
			if err != nil {
				// Fixtures whose lockfile is made at test time (uv.lock,
				// Pipfile.lock carry the index's address) pin the error.
				b = []byte("error: " + err.Error() + "\n")
			} else if b, err = p.JSON(); err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join(root, e.Name()+".plan.json"), b)
		})
	}
	if n < 8 {
		t.Errorf("found %d fixtures, want at least 8", n)
	}
}
