package builder

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/layers"
)

func TestCheckNative(t *testing.T) {
	self, err := os.ReadFile(os.Args[0]) // an ELF for this machine
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addon := filepath.Join(dir, "node_modules", "@acme", "fast-hash", "build", "Release", "hash.node")
	os.MkdirAll(filepath.Dir(addon), 0o755)
	os.WriteFile(addon, self, 0o755)
	os.WriteFile(filepath.Join(dir, "node_modules", "@acme", "fast-hash", "index.js"), []byte("module.exports = 1"), 0o644)
	files, err := layers.Collect(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkNative(files, v1.Platform{OS: "linux", Architecture: runtime.GOARCH}); err != nil {
		t.Errorf("same architecture: %v", err)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	err = checkNative(files, v1.Platform{OS: "linux", Architecture: other})
	if err == nil || !strings.Contains(err.Error(), "package @acme/fast-hash was compiled on this machine") {
		t.Errorf("other architecture: %v", err)
	}
}
