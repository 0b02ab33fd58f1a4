package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/packer-build/packer/internal/testutil"
)

// treeHash digests every path, mode, link and file of dir.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		io.WriteString(h, rel+"\x00"+info.Mode().String()+"\x00")
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			io.WriteString(h, l)
		case info.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			io.Copy(h, f)
			f.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestInImageExecutor: with --executor image a step runs on the base
// image's own Node.js and Python (not this machine's), writes outside the
// app only to a throwaway overlay, leaves the cached root file system
// byte-identical, and gives the same digest twice.
func TestInImageExecutor(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the in-image executor needs root here (no unprivileged user namespaces)")
	}
	testutil.NeedTool(t, "unshare", "apt-get install util-linux")
	base := testutil.DebianBase(t)
	script := `set -e; mkdir -p .packer-out
node --version > .packer-out/node
python3 --version > .packer-out/python
if touch /usr/packer-probe 2>/dev/null; then echo wrote; else echo refused; fi > .packer-out/usr
test -s /etc/packer-ca.crt && echo yes > .packer-out/ca
echo "$HOME" > .packer-out/home`
	p := map[string]any{
		"provider": "custom", "base": base,
		"steps":      []any{map[string]any{"name": "probe", "run": []string{"sh", "-c", script}, "output": ".packer-out"}},
		"layers":     []any{map[string]any{"name": "app", "from": "probe", "dest": "/app"}},
		"entrypoint": []string{"/bin/true"}, "user": "65532:65532", "workingDir": "/app",
	}
	planFile := writePlan(t, p)
	dir := testutil.CopyFixture(t, "go-server")
	cache := t.TempDir()
	build := func(executor string, extra ...string) (map[string]string, string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "layout")
		args := append([]string{"build", dir, "--plan", planFile, "--cache-dir", cache, "--executor", executor, "-o", "oci:" + out, "-t", "app:v1", "--sbom", "none"}, extra...)
		r := packer(t, nil, args...)
		if r.err != nil {
			t.Fatalf("build --executor %s: %v\n%s", executor, r.err, r.stderr)
		}
		files := layerFiles(t, layoutImage(t, out))
		for k, v := range files {
			files[k] = strings.TrimSpace(v)
		}
		return files, strings.TrimSpace(r.stdout)
	}
	image, d1 := build("image")
	hostNode, _ := exec.Command("node", "--version").Output()
	if !strings.HasPrefix(image["app/node"], "v20.19") || image["app/node"] == strings.TrimSpace(string(hostNode)) {
		t.Errorf("node in the image step: %q (this machine's is %s); want the image's Node.js 20.19", image["app/node"], hostNode)
	}
	if !strings.HasPrefix(image["app/python"], "Python 3.13") {
		t.Errorf("python in the image step: %q, want the image's Python 3.13", image["app/python"])
	}
	if image["app/ca"] != "yes" || image["app/home"] != "/tmp" {
		t.Errorf("CA bundle %q, HOME %q; want the host's bundle and HOME=/tmp", image["app/ca"], image["app/home"])
	}
	roots, _ := filepath.Glob(filepath.Join(cache, "rootfs", "[0-9a-f]*"))
	roots = slices.DeleteFunc(roots, func(p string) bool { return strings.HasSuffix(p, ".used") }) // last-use records
	if len(roots) != 1 {
		t.Fatalf("unpacked roots: %v, want one", roots)
	}
	before := treeHash(t, roots[0])
	again, d2 := build("image", "--no-cache")
	if d2 != d1 || again["app/node"] != image["app/node"] {
		t.Errorf("a second image build gave %s, want %s (reproducible)", d2, d1)
	}
	if after := treeHash(t, roots[0]); after != before {
		t.Errorf("the cached root file system changed during a build")
	}
	if _, err := os.Stat(filepath.Join(roots[0], "usr", "packer-probe")); err == nil {
		t.Errorf("a step's write to /usr reached the cached root file system")
	}
	host, _ := build("host", "--no-cache")
	if host["app/node"] != strings.TrimSpace(string(hostNode)) {
		t.Errorf("node in the host step: %q, want this machine's %s", host["app/node"], hostNode)
	}
}
