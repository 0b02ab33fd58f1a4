// Package testutil holds helpers shared by packer's tests.
package testutil

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
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
//
// While scripts/test.sh is still building the peer tools it sets
// PACKER_DEFER_TOOLS to a file and PACKER_DEFERRABLE_TOOLS to their names:
// an e2e test whose peer tool is missing then skips and appends its
// top-level name there, and the script runs it again once the tools are
// built. Any other missing tool fails under CI as always.
func NeedTool(t testing.TB, tool, install string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if f := os.Getenv("PACKER_DEFER_TOOLS"); f != "" && slices.Contains(strings.Fields(os.Getenv("PACKER_DEFERRABLE_TOOLS")), tool) {
			name, _, _ := strings.Cut(t.Name(), "/")
			if err := appendLine(f, name); err != nil {
				t.Fatalf("recording %s for a later run: %v", name, err)
			}
			t.Skipf("SKIP for now: %s is still being built by scripts/tools.sh; %s runs again once it is", tool, name)
		}
		if InCI() {
			t.Fatalf("%s is not installed and CI=true: %s", tool, install)
		}
		t.Skipf("SKIP: %s is not installed (%s); this end-to-end check did not run", tool, install)
	}
	return p
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
