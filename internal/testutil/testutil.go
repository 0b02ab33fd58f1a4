// Package testutil holds helpers shared by packer's tests.
package testutil

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Root returns the repository root (the directory holding go.mod).
func Root(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Fixture returns the path of testdata/fixtures/NAME.
func Fixture(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(Root(t), "testdata", "fixtures", name)
}

// CopyFixture copies testdata/fixtures/NAME into a new temporary directory
// (outside any git work tree) and returns it.
func CopyFixture(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	CopyDir(t, Fixture(t, name), dst)
	return dst
}

// CopyDir copies a directory tree, keeping symlinks and modes.
func CopyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// InCI reports whether the tests run under CI (CI=true), where a missing
// external tool is a failure instead of a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// NeedTool returns the path of an external tool, skipping the test with a
// clear message when it is absent (failing it under CI).
func NeedTool(t testing.TB, tool, install string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if InCI() {
			t.Fatalf("%s is not installed and CI=true: %s", tool, install)
		}
		t.Skipf("SKIP: %s is not installed (%s); this end-to-end check did not run", tool, install)
	}
	return p
}
