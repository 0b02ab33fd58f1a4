package tmpdir

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestReclaim: what a gone process left is removed (read-only
// directories too); this process's, a live process's, and other names
// stay; an old pid-less entry goes, a fresh one stays.
func TestReclaim(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	gone := strconv.Itoa(dead.Process.Pid)
	live := exec.Command("sleep", "30")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Process.Kill(); live.Wait() })
	dir := t.TempDir()
	for _, name := range []string{
		"packer-stage-" + gone + "-123", "packer-stage-" + strconv.Itoa(os.Getpid()) + "-1", "packer-stage-" + strconv.Itoa(live.Process.Pid) + "-2",
		"other-" + gone + "-3", "packer-stage-old", "packer-stage-new",
	} {
		if err := os.MkdirAll(filepath.Join(dir, name, "ro", "f"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "packer-stage-"+gone+"-123", "ro"), 0o555)
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(filepath.Join(dir, "packer-stage-old"), old, old)
	if n := Reclaim(dir, "packer-stage-"); n != 2 {
		t.Errorf("Reclaim removed %d, want 2", n)
	}
	for name, want := range map[string]bool{
		"packer-stage-" + gone + "-123": false, "packer-stage-old": false,
		"packer-stage-" + strconv.Itoa(os.Getpid()) + "-1": true, "packer-stage-" + strconv.Itoa(live.Process.Pid) + "-2": true,
		"other-" + gone + "-3": true, "packer-stage-new": true,
	} {
		_, err := os.Stat(filepath.Join(dir, name))
		if (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", name, err == nil, want)
		}
	}
}
