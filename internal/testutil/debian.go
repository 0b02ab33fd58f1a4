package testutil

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DebianPackages are what the runtime test base holds: Debian 13 (trixie)
// with Node.js 20, Python 3.13 and pip (as the official python images
// have it: steps run inside the image with it), CA roots and tini.
var DebianPackages = "nodejs,python3,python3-pip,ca-certificates,tini"

var debianOnce sync.Once
var debianRef, debianErr string

// DebianBase returns "oci:DIR:trixie", an OCI layout holding a one-layer
// Debian 13 image made by mmdebstrap. Tests that need a real Node.js or
// Python runtime in the image use it as --base. Without mmdebstrap the
// test skips (fails under CI=true).
//
// Where it is built is TestCacheDir's choice: once per machine for a
// developer, from scratch on every CI run.
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

var testCacheOnce sync.Once
var testCacheDir string
var testCacheErr error

// TestCacheDir is where artifacts built for the tests are kept:
// $PACKER_TEST_CACHE when set (scripts/test.sh sets it to a fresh
// directory on every CI run, shared by its go test invocations); a new
// temporary directory under CI=true otherwise, so CI always exercises
// the from-scratch path; else the user cache dir, so a developer builds
// them once per machine.
func TestCacheDir() (string, error) {
	testCacheOnce.Do(func() {
		if d := os.Getenv("PACKER_TEST_CACHE"); d != "" {
			testCacheDir, testCacheErr = d, os.MkdirAll(d, 0o755)
			return
		}
		if InCI() {
			testCacheDir, testCacheErr = os.MkdirTemp("", "packer-test-cache-")
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			testCacheErr = err
			return
		}
		testCacheDir = filepath.Join(cache, "packer-test")
		testCacheErr = os.MkdirAll(testCacheDir, 0o755)
	})
	return testCacheDir, testCacheErr
}

// debCacheDir keeps the .deb files mmdebstrap downloaded, across runs and
// across CI's from-scratch builds: a rebuild then costs unpacking, not
// downloading. Stale packages are harmless (apt picks the versions the
// current package lists name and downloads what is missing).
func debCacheDir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	d := filepath.Join(cache, "packer-test-debs")
	return d, os.MkdirAll(d, 0o755)
}

// EnsureDebianBase builds (once per TestCacheDir) and returns the Debian
// test base as "oci:DIR:trixie".
func EnsureDebianBase() (string, error) {
	dir, err := TestCacheDir()
	if err != nil {
		return "", fmt.Errorf("test cache dir: %w", err)
	}
	tarPath, layoutDir := debianPaths(dir)
	if _, err := os.Stat(filepath.Join(layoutDir, "index.json")); err == nil {
		return "oci:" + layoutDir + ":trixie", nil
	}
	if err := CheckTar(tarPath); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			// A broken or foreign file under the final name (an older
			// helper renamed a directory here): rebuild it.
			if err := os.RemoveAll(tarPath); err != nil {
				return "", err
			}
		}
		if err := Mmdebstrap(tarPath); err != nil {
			return "", err
		}
	}
	if err := writeDebianLayout(dir, tarPath, layoutDir); err != nil {
		return "", err
	}
	return "oci:" + layoutDir + ":trixie", nil
}

// debianPaths are the test base's root file system tar and OCI layout in
// the test cache dir. The names carry the package list, so a machine's
// cached base is rebuilt when the list changes.
func debianPaths(dir string) (tarPath, layoutDir string) {
	sum := sha256.Sum256([]byte(DebianPackages))
	return filepath.Join(dir, fmt.Sprintf("trixie-%x.tar", sum[:4])), filepath.Join(dir, fmt.Sprintf("trixie-oci-%s-%x", runtime.GOARCH, sum[:4]))
}

// DebianTar is the path of the Debian test base's root file system tar.
func DebianTar() (string, error) {
	dir, err := TestCacheDir()
	if err != nil {
		return "", err
	}
	tarPath, _ := debianPaths(dir)
	return tarPath, nil
}

// Mmdebstrap builds the Debian 13 base into the tar file out. It writes to
// OUT.tmp.tar beside it with an explicit --format=tar (mmdebstrap picks
// its format from the target's extension and writes a directory for
// anything it does not know), checks that the result is a tar, and only
// then renames it to out, so a half-built base never has the final name.
func Mmdebstrap(out string) error {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return errors.New("mmdebstrap is not installed (apt-get install mmdebstrap)")
	}
	debs, err := debCacheDir()
	if err != nil {
		return fmt.Errorf("deb cache dir: %w", err)
	}
	tmp := out + ".tmp.tar"
	defer os.RemoveAll(tmp)
	start := time.Now()
	cmd := exec.Command("mmdebstrap", "--variant=apt", "--format=tar",
		"--include="+DebianPackages,
		"--skip=essential/unlink",
		"--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
		"--setup-hook=sync-in "+debs+" /var/cache/apt/archives/",
		"--customize-hook=sync-out /var/cache/apt/archives "+debs,
		"trixie", tmp)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mmdebstrap: %w\n%s", err, b)
	}
	if err := CheckTar(tmp); err != nil {
		return fmt.Errorf("mmdebstrap wrote no tar: %w", err)
	}
	fmt.Fprintf(os.Stderr, "testutil: built the Debian 13 test base in %.1fs (%s)\n", time.Since(start).Seconds(), out)
	return os.Rename(tmp, out)
}

// CheckTar returns an error unless path is a regular file holding a tar
// stream with a Debian root file system (usr/bin/ in it).
func CheckTar(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (mode %s)", path, fi.Mode())
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s: a tar with %d entries and no usr/bin/", path, n)
		}
		if err != nil {
			return fmt.Errorf("%s is not a tar: %w", path, err)
		}
		if name := filepath.Clean(h.Name); name == "usr/bin" || name == "./usr/bin" {
			return nil
		}
	}
}

func writeDebianLayout(dir, tarPath, layoutDir string) error {
	l, err := tarball.LayerFromFile(tarPath, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	img, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), &v1.ConfigFile{
		OS: "linux", Architecture: runtime.GOARCH, RootFS: v1.RootFS{Type: "layers"},
		Config: v1.Config{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}},
	})
	if err != nil {
		return err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.AppendLayers(img, l); err != nil {
		return err
	}
	return writeLayout(dir, img, "trixie", layoutDir)
}

// writeLayout writes img, tagged tag, as an OCI layout at layoutDir: built
// beside it in dir and renamed into place, so a half-written layout never
// has the final name and concurrent test processes share one.
func writeLayout(dir string, img v1.Image, tag, layoutDir string) error {
	tmpLayout, err := os.MkdirTemp(dir, ".layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmpLayout)
	p, err := layout.Write(tmpLayout, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		return err
	}
	if err := os.Rename(tmpLayout, layoutDir); err != nil && !os.IsExist(err) {
		if _, serr := os.Stat(filepath.Join(layoutDir, "index.json")); serr != nil {
			return err
		}
	}
	return nil
}
