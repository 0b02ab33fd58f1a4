package builder

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/plan"
)

// TestStepKeyFormat pins the step cache key's format: a change here
// invalidates every cache, so it must be deliberate.
func TestStepKeyFormat(t *testing.T) {
	s := plan.Step{Name: "deps", Run: []string{"npm", "ci"}, Output: ".packer-out", Key: "npm 11", Files: map[string]string{".npmrc": "x"}}
	specs := []plan.Layer{{Name: "deps", From: "deps", Dest: "/app/node_modules"}}
	pl := v1.Platform{OS: "linux", Architecture: "arm64"}
	got := stepKey("1.2.3", layers.Compressor(), pl, s, map[string]string{"NODE_ENV": "production"}, specs, "v20.19.0\n", "inputs-hash")
	// Test binaries carry no module versions in their build info, so the
	// compressor reads as "…@unknown" here; in packer it is versioned.
	if c := layers.Compressor(); c != "klauspost/pgzip@unknown (compress@unknown) level 6 block 1048576" {
		t.Fatalf("compressor is %q in this test binary; re-pin the key below for it", c)
	}
	const want = "b9389ec6900613d579dbe3bdd1aacd38a8aaa5dae816e1d493e3bb25baf17095"
	if got != want {
		t.Errorf("stepKey() = %s, want %s; a changed key format invalidates every cache (re-pin only on purpose)", got, want)
	}
	// Each part matters.
	for _, other := range []string{
		stepKey("1.2.4", layers.Compressor(), pl, s, map[string]string{"NODE_ENV": "production"}, specs, "v20.19.0\n", "inputs-hash"),
		stepKey("1.2.3", layers.Compressor(), v1.Platform{OS: "linux", Architecture: "amd64"}, s, map[string]string{"NODE_ENV": "production"}, specs, "v20.19.0\n", "inputs-hash"),
		stepKey("1.2.3", layers.Compressor(), pl, s, map[string]string{"NODE_ENV": "development"}, specs, "v20.19.0\n", "inputs-hash"),
		stepKey("1.2.3", layers.Compressor(), pl, s, map[string]string{"NODE_ENV": "production"}, nil, "v20.19.0\n", "inputs-hash"),
		stepKey("1.2.3", layers.Compressor(), pl, s, map[string]string{"NODE_ENV": "production"}, specs, "v22.0.0\n", "inputs-hash"),
		stepKey("1.2.3", layers.Compressor(), pl, s, map[string]string{"NODE_ENV": "production"}, specs, "v20.19.0\n", "other-inputs"),
	} {
		if other == got {
			t.Errorf("a changed part gave the same key %s", got)
		}
	}
}
