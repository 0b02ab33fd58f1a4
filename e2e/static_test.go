package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packer-build/packer/internal/testutil"
)

// TestStaticSite: a directory of HTML with no package.json builds into an
// image that serves it (clean URLs, its 404 page) under runc, as non-root.
func TestStaticSite(t *testing.T) {
	base := testutil.DebianBase(t)
	dir := testutil.CopyFixture(t, "static-site")
	out := filepath.Join(t.TempDir(), "layout")
	r := packer(t, cacheEnv(t), "build", dir, "--base", base, "-o", "oci:"+out, "-t", "site:v1")
	if r.err != nil {
		t.Fatalf("build: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stderr, "static app in") {
		t.Errorf("not built by the static provider:\n%s", r.stderr)
	}
	c := runLayout(t, out, "v1")
	for _, tc := range []struct {
		path, body, ctype string
		status            int
	}{
		{"/", "hello from a static site", "text/html", http.StatusOK},
		{"/about", "about this site", "text/html", http.StatusOK},
		{"/css/style.css", "font-family", "text/css", http.StatusOK},
		{"/no/such/page", "Page Not Found", "text/html", http.StatusNotFound},
	} {
		status, body, hdr := c.get(tc.path)
		if status != tc.status || !strings.Contains(body, tc.body) || !strings.HasPrefix(hdr.Get("Content-Type"), tc.ctype) {
			t.Errorf("GET %s = %d %q (%s), want %d with %q (%s); log:\n%s", tc.path, status, body, hdr.Get("Content-Type"), tc.status, tc.body, tc.ctype, c.log())
		}
	}
	if uid := c.uid(); uid != "65532" {
		t.Errorf("process uid %s, want 65532", uid)
	}
	for _, p := range []string{"app/public/README.md", "app/node_modules"} {
		if c.exists(p) {
			t.Errorf("/%s is in the image", p)
		}
	}
	if d := c.stop(); d.Seconds() > 2 {
		t.Errorf("container took %s to stop on SIGTERM", d)
	}
}
