package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packer-build/packer/internal/testutil"
	"github.com/packer-build/packer/rootfs"
)

// TestUnpackedBaseRunsItsOwnNode: the Debian base unpacked by rootfs runs
// its own Node.js and Python under chroot (the first piece of steps that
// run inside the image), and a second call reuses the unpacked tree.
func TestUnpackedBaseRunsItsOwnNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: chroot needs root; the unpack itself is unit-tested")
	}
	chroot := testutil.NeedTool(t, "chroot", "apt-get install coreutils")
	img := layoutImage(t, strings.SplitN(strings.TrimPrefix(testutil.DebianBase(t), "oci:"), ":", 2)[0])
	cache := t.TempDir()
	dir, err := rootfs.Cached(t.Context(), img, cache)
	if err != nil {
		t.Fatalf("Cached() = %v", err)
	}
	for argv, want := range map[string]string{"/usr/bin/node --version": "v20.", "/usr/bin/python3 --version": "Python 3.13"} {
		out, err := exec.Command(chroot, append([]string{dir}, strings.Fields(argv)...)...).CombinedOutput()
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), want) {
			t.Errorf("chroot %s %s = %q, %v; want %s…", dir, argv, out, err, want)
		}
	}
	st, _ := os.Stat(filepath.Join(dir, "etc", "os-release"))
	again, err := rootfs.Cached(t.Context(), img, cache)
	st2, _ := os.Stat(filepath.Join(again, "etc", "os-release"))
	if err != nil || again != dir || !os.SameFile(st, st2) {
		t.Errorf("second Cached() = %q, %v; want the same unpacked tree %q", again, err, dir)
	}
}
