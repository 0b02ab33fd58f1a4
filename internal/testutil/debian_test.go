package testutil

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"
)

// The bug this guards against: mmdebstrap wrote a directory for a target
// named *.tar.tmp, and it was renamed into the cache as trixie.tar.
func TestCheckTar(t *testing.T) {
	dir := t.TempDir()
	asDir := filepath.Join(dir, "trixie.tar")
	os.MkdirAll(filepath.Join(asDir, "usr/bin"), 0o755)
	if err := CheckTar(asDir); err == nil {
		t.Errorf("CheckTar(a directory) = nil")
	}
	junk := filepath.Join(dir, "junk.tar")
	os.WriteFile(junk, []byte("not a tar at all, but long enough to be read as a header block?"), 0o644)
	if err := CheckTar(junk); err == nil {
		t.Errorf("CheckTar(junk) = nil")
	}
	good := filepath.Join(dir, "good.tar")
	f, _ := os.Create(good)
	tw := tar.NewWriter(f)
	for _, d := range []string{"./", "./usr/", "./usr/bin/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755})
	}
	tw.Close()
	f.Close()
	if err := CheckTar(good); err != nil {
		t.Errorf("CheckTar(a root file system tar) = %v", err)
	}
	if err := CheckTar(filepath.Join(dir, "missing.tar")); !os.IsNotExist(err) {
		t.Errorf("CheckTar(missing) = %v, want not-exist", err)
	}
}
