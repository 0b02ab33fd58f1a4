package layers

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestBadDockerignoreLine: a broken pattern is named with its line.
func TestBadDockerignoreLine(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("# comment\nnode_modules\n\nlogs/[a-\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadIgnore(dir, nil, nil)
	if err == nil || !strings.HasPrefix(err.Error(), `.dockerignore:4: invalid pattern "logs/[a-": `) || !strings.HasSuffix(err.Error(), "fix or remove that line") {
		t.Fatalf("LoadIgnore() = %v", err)
	}
}

// TestContextNotes: what the walk ships differently from the disk, or
// leaves out without a pattern, is noted once per path: a hard link whose
// other link is outside the context, a dangling symlink, a FIFO.
func TestContextNotes(t *testing.T) {
	outside := t.TempDir()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "shared.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(outside, "shared.txt"), filepath.Join(dir, "linked.txt")); err != nil {
		t.Skipf("SKIP: no hard links across these directories: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o644)
	os.Link(filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")) // both links inside: no note
	os.Symlink("missing.txt", filepath.Join(dir, "dangling"))
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	ig, err := LoadIgnore(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Collect(dir, ig, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Rel)
	}
	if strings.Join(names, " ") != "a.txt b.txt dangling linked.txt" {
		t.Errorf("collected %v", names)
	}
	notes := strings.Join(ig.Notes(), "\n")
	for _, want := range []string{
		"dangling is a symlink to missing.txt, which does not exist",
		"linked.txt is a hard link whose other links are outside the context",
		"left out special files (sockets, devices, pipes), which a layer cannot hold: pipe",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "a.txt") || strings.Contains(notes, "b.txt") {
		t.Errorf("a hard link with both links inside was noted:\n%s", notes)
	}
}
