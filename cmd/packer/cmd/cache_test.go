package cmd

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestCachePrune: prune removes the unpacked bases (read-only directories
// too), system packages and download caches, and keeps the layers; --all
// removes the whole cache.
func TestCachePrune(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"rootfs/abc/usr/bin/tool", "system/k/upper/usr/lib/libpq.so.5", "tool-cache/pip/x", "blobs/sha256/aa"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "rootfs/abc/usr/bin"), 0o555); err != nil {
		t.Fatal(err)
	}
	root := New()
	root.SetArgs([]string{"cache", "prune", "--cache-dir", dir})
	root.SetErr(io.Discard)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"rootfs", "system", "tool-cache"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs/sha256/aa")); err != nil {
		t.Errorf("prune removed the layers: %v", err)
	}
	root = New()
	root.SetArgs([]string{"cache", "prune", "--all", "--cache-dir", dir})
	root.SetErr(io.Discard)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("--all left %s", dir)
	}
}
