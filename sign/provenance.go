package sign

import (
	"encoding/json"
	"sort"
	"time"
)

// BuildInfo is what the SLSA provenance records about a build.
type BuildInfo struct {
	BuilderVersion string
	Provider       string
	Source         string // git remote (credentials stripped), or ""
	Revision       string // git commit, or ""
	Platforms      []string
	BuildArgNames  []string // names only, never values
	BaseName       string
	BaseDigest     string // sha256:...
	Created        time.Time
}

// BuilderID identifies packer as the builder in provenance.
const BuilderID = "urn:packer:builder:v1"

// Provenance returns a SLSA provenance v1 predicate for the build.
func Provenance(b BuildInfo) ([]byte, error) {
	names := append([]string{}, b.BuildArgNames...)
	sort.Strings(names)
	ext := map[string]any{"provider": b.Provider, "platforms": b.Platforms}
	if len(names) > 0 {
		ext["buildArgs"] = names
	}
	var deps []map[string]any
	if b.Source != "" {
		ext["source"] = map[string]string{"uri": b.Source, "revision": b.Revision}
		d := map[string]any{"uri": "git+" + b.Source}
		if b.Revision != "" {
			d["digest"] = map[string]string{"gitCommit": b.Revision}
		}
		deps = append(deps, d)
	}
	if b.BaseDigest != "" {
		alg, hex := "sha256", b.BaseDigest
		if len(hex) > 7 && hex[:7] == "sha256:" {
			hex = hex[7:]
		}
		uri := b.BaseName
		if uri == "" {
			uri = "base"
		}
		deps = append(deps, map[string]any{"uri": "oci://" + uri, "digest": map[string]string{alg: hex}})
	}
	pred := map[string]any{
		"buildDefinition": map[string]any{
			"buildType":            "urn:packer:build:v1",
			"externalParameters":   ext,
			"internalParameters":   map[string]string{"packerVersion": b.BuilderVersion},
			"resolvedDependencies": deps,
		},
		"runDetails": map[string]any{
			"builder":  map[string]any{"id": BuilderID, "version": map[string]string{"packer": b.BuilderVersion}},
			"metadata": map[string]string{"startedOn": b.Created.UTC().Format(time.RFC3339)},
		},
	}
	return json.Marshal(pred)
}
