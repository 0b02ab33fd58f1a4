package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/packer-build/packer/internal/testutil"
)

// TestPinnedDigests: the image digests of a bundled fixture are pinned in
// testdata/digests.golden.json, so a refactor that changes a single byte of
// an image (layer order, a header, the config) fails here. The go-server
// image holds a binary the Go toolchain compiled, so its pin is per Go
// version; the source-plan image (the same fixture shipped as files on the
// builtin static base) depends on packer alone.
//
// go test ./e2e -run TestPinnedDigests -update records the current digests,
// after a change that is meant to move them.
func TestPinnedDigests(t *testing.T) {
	gov, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	goVersion := strings.TrimSpace(string(gov))
	env := append(cacheEnv(t), "SOURCE_DATE_EPOCH=1700000000", "GOCACHE="+goCache)
	got := map[string]string{}
	dir := testutil.CopyFixture(t, "go-server")
	got["go-server "+goVersion] = mustPacker(t, env, "build", dir, "-o", "oci:"+filepath.Join(t.TempDir(), "l"), "-t", "app:v1")
	got["go-server source-plan"] = mustPacker(t, env, "build", dir, "--plan", sourcePlan(t), "-o", "oci:"+filepath.Join(t.TempDir(), "l"), "-t", "app:v1")

	path := filepath.Join(testutil.Root(t), "testdata", "digests.golden.json")
	want := map[string]string{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if testutil.Updating() {
		for k, v := range got {
			want[k] = v
		}
		b, _ := json.MarshalIndent(want, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for k, v := range got {
		w, ok := want[k]
		if !ok {
			if strings.HasPrefix(k, "go-server go") {
				t.Logf("no digest pinned for %s (another Go version); run with -update to pin %s", k, v)
				continue
			}
			t.Errorf("no digest pinned for %s in %s; run go test ./e2e -run TestPinnedDigests -update", k, path)
			continue
		}
		if v != w {
			t.Errorf("%s: digest %s, pinned %s; an image byte changed (go test ./e2e -run TestPinnedDigests -update if intended)", k, v, w)
		}
	}
}

// TestDebianTestBase: the Debian base the Node and Python tests run on is
// a real root file system tar, and under CI it was built from scratch in
// this run (scripts/test.sh gives CI a fresh PACKER_TEST_CACHE), so the
// path a fresh machine takes is exercised every time.
func TestDebianTestBase(t *testing.T) {
	ref := testutil.DebianBase(t)
	dir, err := testutil.TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	tarPath, err := testutil.DebianTar()
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.CheckTar(tarPath); err != nil {
		t.Fatalf("the Debian test base: %v", err)
	}
	if testutil.InCI() {
		user, _ := os.UserCacheDir()
		if filepath.Clean(dir) == filepath.Join(user, "packer-test") {
			t.Errorf("under CI the test base came from the machine's cache %s, not from scratch", dir)
		}
	}
	layoutDir, _, _ := strings.Cut(strings.TrimPrefix(ref, "oci:"), ":")
	idx, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Fatalf("the test base layout: %v", err)
	}
	if im, err := idx.IndexManifest(); err != nil || len(im.Manifests) != 1 {
		t.Fatalf("the test base layout holds %v (%v), want one image", im, err)
	}
}
