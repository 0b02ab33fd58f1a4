package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/plan"
)

// TestManifestLeftOut: a .dockerignore that leaves out the lockfile or
// the manifest the app was detected by fails the build naming it and the
// fix, instead of a toolchain error.
func TestManifestLeftOut(t *testing.T) {
	p := &plan.Plan{Provider: "node", Base: "scratch", Steps: []plan.Step{{Name: "deps", Run: []string{"true"}, Inputs: []string{"package-lock.json", ".npmrc"}}},
		Layers: []plan.Layer{{Name: "app", From: plan.FromSource, Dest: "/app"}}}
	for _, c := range []struct{ ignore, want string }{
		{"package-lock.json\n", "package-lock.json is left out of the build context"},
		{"*.json\n", "package.json is left out of the build context"},
		{".npmrc\n", ""},
	} {
		dir := t.TempDir()
		for name, data := range map[string]string{"package.json": "{}", "package-lock.json": "{}", ".npmrc": "x=1", ".dockerignore": c.ignore} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ig, err := layers.LoadIgnore(dir, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = checkManifestsKept(dir, p, ig)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "add a !")) {
			t.Errorf(".dockerignore %q: %v, want %q", c.ignore, err, c.want)
		}
	}
}
