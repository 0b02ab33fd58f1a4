package config

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/packer-build/packer/plan"
)

// FuzzParse: any packer.toml gives a File or an error naming the file,
// never a panic; what it gives applies to a plan.
func FuzzParse(f *testing.F) {
	f.Add([]byte("base = \"node:22\"\nports = [8080]\n[env]\nA = \"1\"\n[healthcheck]\ncmd = \"true\"\n"))
	f.Add([]byte("[system]\nbuild = [\"gcc\"]\nrun = [\"libpq5\"]\nexecutor = \"image\"\n"))
	f.Add([]byte("entrypoint = [\"/app/x\"]\nstop_signal = \"SIGINT\"\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		file, lines, err := Parse("packer.toml", raw)
		if err != nil {
			return
		}
		p := &plan.Plan{Provider: "x", Base: "scratch", Env: map[string]string{}}
		Merge(file.Overrides("packer.toml", lines)).Apply(p)
	})
}

// FuzzSplitCommand: --entrypoint and --cmd words or JSON never panic,
// and what parses is not empty unless the input was (blank, or the JSON
// empty array, which resets as ENTRYPOINT [] does).
func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{`/app/server --flag`, `["a", "b c"]`, `node "a b" 'c d'`, `[`, `"unterminated`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		argv, err := SplitCommand(s)
		if err == nil && len(argv) == 0 && strings.TrimSpace(s) != "" && !isEmptyJSONArray(s) {
			t.Fatalf("SplitCommand(%q) = [] with no error", s)
		}
	})
}

func isEmptyJSONArray(s string) bool {
	var v []string
	return json.Unmarshal([]byte(strings.TrimSpace(s)), &v) == nil && len(v) == 0
}
