package sbom_test

import (
	"slices"
	"testing"

	"github.com/packer-build/packer/detect/builtin"
	"github.com/packer-build/packer/sbom"
)

// TestEveryProviderHasACataloger: a provider's packages must show in the
// SBOM. A new provider fails here until it is mapped to its package
// ecosystem and sbom has a cataloger for it (or it ships no packages).
func TestEveryProviderHasACataloger(t *testing.T) {
	ecosystem := map[string]string{
		"golang": "golang", // the build info of the binary
		"node":   "npm",    // node_modules/**/package.json
		"python": "pypi",   // *.dist-info/METADATA
		"static": "",       // files only: the base's OS packages are all
	}
	have := sbom.Ecosystems()
	for _, p := range builtin.Providers() {
		eco, ok := ecosystem[p.Name()]
		if !ok {
			t.Errorf("provider %s has no ecosystem here: map it, and give sbom a cataloger for its packages", p.Name())
			continue
		}
		if eco != "" && !slices.Contains(have, eco) {
			t.Errorf("provider %s builds %s packages, and sbom has no cataloger for them (it has %v)", p.Name(), eco, have)
		}
	}
	for _, os := range []string{"deb", "apk"} {
		if !slices.Contains(have, os) {
			t.Errorf("no cataloger for the base's %s packages", os)
		}
	}
}
