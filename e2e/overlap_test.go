package e2e

import (
	"bytes"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/packer-build/packer/internal/testutil"
	"github.com/packer-build/packer/layers"
)

// TestStepsRunAgainWhenTheBaseSaysOtherwise: a base read for the first
// time is read while the steps run on this machine, as its config
// suggests (it names no Python, so the plan's 3.13 is assumed: this
// machine's). Its files then show a musl C library (a musl loader added
// to the Debian test base), so the steps run again, inside the image;
// the build counts them once, and the app answers under runc.
func TestStepsRunAgainWhenTheBaseSaysOtherwise(t *testing.T) {
	t.Parallel()
	testutil.NeedTool(t, "unshare", "apt-get install util-linux")
	dir := testutil.CopyFixture(t, "py-flask")
	hostPy := exec.Command("python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])")
	hostPy.Dir = dir // its .python-version picks the interpreter
	if v, err := hostPy.Output(); err != nil || strings.TrimSpace(string(v)) != "3.13" {
		t.Skipf("SKIP: this machine's python3 in the fixture is %q (%v), not the plan's 3.13: the steps would start inside the image", v, err)
	}
	base := muslLookalike(t)
	env := cacheEnv(t)
	out := filepath.Join(t.TempDir(), "layout")
	r := packer(t, env, "build", dir, "--base", base, "-o", "oci:"+out, "-t", "app:v1")
	if r.err != nil {
		t.Fatalf("build: %v\n%s", r.err, r.stderr)
	}
	for _, want := range []string{
		"steps (linux/amd64) start on this machine while the base's files are read",
		"the base's files changed where the steps run (this machine's C library is glibc, the image's musl): they run again",
		"steps (linux/amd64) run inside the image",
		"(1 steps run, 0 skipped)",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the log lacks %q:\n%s", want, r.stderr)
		}
	}
	c := runLayout(t, out, "v1")
	if status, body, _ := c.get("/"); status != http.StatusOK || !strings.Contains(body, "hello from flask") {
		t.Fatalf("GET / = %d %q; log:\n%s", status, body, c.log())
	}
}

// muslLookalike is the Debian test base with a musl loader file added,
// as an OCI layout reference.
func muslLookalike(t *testing.T) string {
	base, err := testutil.LayoutImage(testutil.DebianBase(t))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := layers.WriteEntries(&buf, []layers.Entry{{Name: "/lib/ld-musl-x86_64.so.1", Mode: 0o755, Data: []byte("not really musl")}}); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "musl-lookalike")
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1"})); err != nil {
		t.Fatal(err)
	}
	return "oci:" + out + ":1"
}
