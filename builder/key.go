package builder

import (
	"encoding/json"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/plan"
)

// stepKey is the cache key of one step for one platform: a hash of
// everything that can change what the step leaves behind. Its format is
// pinned by TestStepKeyFormat: changing it invalidates every user's cache,
// so do it on purpose (and bump "step/v1").
//
//   - version: packer's own version (a new packer may write other layers);
//   - the layer compressor (layer bytes depend on it);
//   - the platform;
//   - the step's command, variables (build args included), output dir,
//     extra key, native check and generated files, and the layers it feeds;
//   - toolchain: the probe's output (`go version`, `node --version`);
//   - inputs: the hash of the input files (layers.HashFiles).
func stepKey(version, compressor string, pl v1.Platform, s plan.Step, env map[string]string, specs []plan.Layer, toolchain, inputs string) string {
	stepJSON, _ := json.Marshal(struct {
		Run    []string
		Env    map[string]string
		Output string
		Key    string
		Native bool
		Files  map[string]string
		Layers []plan.Layer
	}{s.Run, env, s.Output, s.Key, s.NativeCheck, s.Files, specs})
	return layers.Key("step/v1", version, compressor, pl.String(), string(stepJSON), toolchain, inputs)
}
