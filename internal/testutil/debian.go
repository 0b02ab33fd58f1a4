package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DebianPackages are what the runtime test base holds: Debian 13 (trixie)
// with Node.js 20, Python 3.13, CA roots and tini.
var DebianPackages = "nodejs,python3,ca-certificates,tini"

var debianOnce sync.Once
var debianRef, debianErr string

// DebianBase returns "oci:DIR:trixie", an OCI layout holding a one-layer
// Debian 13 image made by mmdebstrap, built once per machine under the
// user cache directory (1-5 minutes). Tests that need a real Node.js or
// Python runtime in the image use it as --base. Without mmdebstrap the
// test skips (fails under CI=true).
func DebianBase(t testing.TB) string {
	t.Helper()
	debianOnce.Do(func() {
		ref, err := EnsureDebianBase()
		debianRef = ref
		if err != nil {
			debianErr = err.Error()
		}
	})
	if debianErr != "" {
		if InCI() {
			t.Fatalf("Debian test base: %s", debianErr)
		}
		t.Skipf("SKIP: Debian test base unavailable: %s", debianErr)
	}
	return debianRef
}

// EnsureDebianBase builds (once per machine) and returns the Debian test
// base as "oci:DIR:trixie".
func EnsureDebianBase() (string, error) {
	ref, msg := makeDebianBase()
	if msg != "" {
		return "", errors.New(msg)
	}
	return ref, nil
}

func makeDebianBase() (string, string) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err.Error()
	}
	dir := filepath.Join(cache, "packer-test")
	tarPath := filepath.Join(dir, "trixie.tar")
	layoutDir := filepath.Join(dir, "trixie-oci-"+runtime.GOARCH)
	if _, err := os.Stat(filepath.Join(layoutDir, "index.json")); err == nil {
		return "oci:" + layoutDir + ":trixie", ""
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err.Error()
	}
	if _, err := os.Stat(tarPath); err != nil {
		if _, err := exec.LookPath("mmdebstrap"); err != nil {
			return "", "mmdebstrap is not installed (apt-get install mmdebstrap)"
		}
		tmp := tarPath + ".tmp"
		cmd := exec.Command("mmdebstrap", "--variant=apt", "--include="+DebianPackages, "trixie", tmp)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Sprintf("mmdebstrap: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, tarPath); err != nil {
			return "", err.Error()
		}
	}
	l, err := tarball.LayerFromFile(tarPath, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return "", err.Error()
	}
	img, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), &v1.ConfigFile{
		OS: "linux", Architecture: runtime.GOARCH, RootFS: v1.RootFS{Type: "layers"},
		Config: v1.Config{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}},
	})
	if err != nil {
		return "", err.Error()
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.AppendLayers(img, l); err != nil {
		return "", err.Error()
	}
	tmpLayout, err := os.MkdirTemp(dir, ".layout-")
	if err != nil {
		return "", err.Error()
	}
	defer os.RemoveAll(tmpLayout)
	p, err := layout.Write(tmpLayout, empty.Index)
	if err != nil {
		return "", err.Error()
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "trixie"})); err != nil {
		return "", err.Error()
	}
	if err := os.Rename(tmpLayout, layoutDir); err != nil && !os.IsExist(err) {
		if _, serr := os.Stat(filepath.Join(layoutDir, "index.json")); serr != nil {
			return "", err.Error()
		}
	}
	return "oci:" + layoutDir + ":trixie", ""
}
