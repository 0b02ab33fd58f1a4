package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/packer-build/packer/internal/testutil"
)

// nodeEnv is the environment for builds that run npm, pnpm or yarn.
// COREPACK_INTEGRITY_KEYS=0: the registry reachable here serves no
// signatures for corepack to check. COREPACK_NPM_REGISTRY (npm's own
// registry setting): corepack then fetches yarn 2+ from the npm registry,
// the only place this machine reaches, instead of yarn's own site.
func nodeEnv(t *testing.T) []string {
	env := append(cacheEnv(t), "COREPACK_INTEGRITY_KEYS=0", "COREPACK_ENABLE_DOWNLOAD_PROMPT=0", "NEXT_TELEMETRY_DISABLED=1")
	npmRegistryOnce.Do(func() {
		if out, err := exec.Command("npm", "config", "get", "registry").Output(); err == nil {
			npmRegistry = strings.TrimRight(strings.TrimSpace(string(out)), "/")
		}
	})
	if npmRegistry != "" && os.Getenv("COREPACK_NPM_REGISTRY") == "" {
		env = append(env, "COREPACK_NPM_REGISTRY="+npmRegistry)
	}
	return env
}

// nodeFixture copies a Node.js fixture and runs the prepare commands in the
// copy (lockfiles that would carry the registry's address are made here);
// a bun fixture needs bun.
func nodeFixture(t *testing.T, name string, prepare ...[]string) string {
	t.Helper()
	if strings.Contains(name, "bun") {
		testutil.NeedTool(t, "bun", "npm install -g bun (scripts/test-deps.sh does)")
	}
	dir := testutil.CopyFixture(t, name)
	for _, argv := range prepare {
		if len(argv) == 0 {
			continue
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), nodeEnv(t)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
	}
	return dir
}

var (
	npmRegistryOnce sync.Once
	npmRegistry     string
)

func layoutImage(t *testing.T, dir string) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	var d v1.Descriptor
	for _, m := range im.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] != "" {
			d = m // the tagged image, not an SBOM referrer
		}
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// buildOnBase builds dir on base into a new OCI layout and returns the
// image and the build's log.
func buildOnBase(t *testing.T, env []string, dir, base string) (v1.Image, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "layout")
	r := packer(t, env, "build", dir, "--base", base, "-o", "oci:"+out, "-t", "app:v1")
	if r.err != nil {
		t.Fatalf("build: %v\n%s", r.err, r.stderr)
	}
	return layoutImage(t, out), r.stderr
}

func layerByComment(t *testing.T, img v1.Image, name string) string {
	t.Helper()
	cfg, _ := img.ConfigFile()
	ls, _ := img.Layers()
	var withLayer []v1.History
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			withLayer = append(withLayer, h)
		}
	}
	for i, h := range withLayer {
		if h.Comment == "packer layer "+name && i < len(ls) {
			d, _ := ls[i].Digest()
			return d.String()
		}
	}
	t.Fatalf("no layer %q in the image", name)
	return ""
}

// TestNodeFixtures builds each Node.js fixture on a Debian 13 base with
// Node.js, runs it under runc and checks what a user would.
func TestNodeFixtures(t *testing.T) {
	t.Parallel()
	testutil.NeedTool(t, "node", "install Node.js")
	testutil.NeedTool(t, "npm", "install Node.js")
	base := testutil.DebianBase(t)
	for _, tc := range []struct {
		fixture  string
		body     string            // expected in GET /
		absent   []string          // paths that must not be in the image
		deepLink bool              // SPA: /some/route serves index.html
		prepare  []string          // run in the copy first (lockfiles that carry registry addresses are made here)
		pages    map[string]string // other paths and what their body holds
	}{
		{fixture: "node-express", body: `"uid":65532`, absent: []string{"app/node_modules/@types/express", "app/.env"}},
		{fixture: "node-bare", body: "hello from plain node (uid 65532)"},
		{fixture: "node-npm-workspace-root", body: "hello from the workspace lib, api"},
		{fixture: "node-pnpm-workspace-root", body: "hello from the pnpm workspace lib, pnpm root, up 1m (uid 65532; migrated by pnpm/10.34.8)", absent: []string{"app/.packer-pm"}},
		{fixture: "node-yarn-pnp", body: `"pnp":true`, absent: []string{"app/node_modules"}},
		{fixture: "node-next-turbo", body: "hello from the turbo ui package", absent: []string{"app/node_modules/turbo", "app/apps/web/.next/cache", "app/node_modules/typescript"}},
		{fixture: "node-hono-bun", body: "hello from hono", absent: []string{"app/node_modules/typescript"}},
		{fixture: "node-koa-yarn", body: "hello from koa", absent: []string{"app/node_modules/nodemon"}, prepare: []string{"corepack", "yarn", "install", "--ignore-scripts", "--non-interactive"}},
		{fixture: "node-fastify-pnpm", body: `"uid":65532`, absent: []string{"app/node_modules/pino-pretty", "app/node_modules/.pnpm/pino-pretty@13.1.3"}},
		{fixture: "node-ts-build", body: "hello from typescript", absent: []string{"app/node_modules/typescript", "app/src/server.ts"}},
		{fixture: "node-nest", body: "hello from nest", absent: []string{"app/node_modules/@nestjs/cli", "app/node_modules/typescript", "app/src/main.ts"}},
		{fixture: "node-vite-spa", body: `<div id="root">`, absent: []string{"app/node_modules", "app/src"}, deepLink: true},
		{fixture: "node-next-standalone", body: "hello from next", absent: []string{"app/node_modules/typescript", "app/.next/cache"}},
		{fixture: "node-next-export", body: "hello from a static next export", absent: []string{"app/node_modules", "app/.next", "app/app/page.js"},
			pages: map[string]string{"/about": "about this next export", "/robots.txt": "hello"}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			t.Parallel()
			if testing.Short() && strings.HasPrefix(tc.fixture, "node-next-") {
				t.Skip("SKIP: -short skips the Next.js build (about a minute)")
			}
			dir := nodeFixture(t, tc.fixture, tc.prepare)
			exec.Command("git", "init", "-q", dir).Run() // a .git that must not be shipped
			out := filepath.Join(t.TempDir(), "layout")
			r := packer(t, nodeEnv(t), "build", dir, "--base", base, "-o", "oci:"+out, "-t", "app:v1")
			if r.err != nil {
				t.Fatalf("build: %v\n%s", r.err, r.stderr)
			}
			// The Debian base has Node.js 20, as this machine does: the plan's
			// default (22) gives way to the base's, with no bogus ABI warning.
			if strings.Contains(r.stderr, "warning: this machine has Node.js") {
				t.Errorf("an ABI warning although the base's Node.js is this machine's:\n%s", r.stderr)
			}
			c := runLayout(t, out, "v1")
			status, body, hdr := c.get("/")
			if status != http.StatusOK || !strings.Contains(body, tc.body) {
				t.Fatalf("GET / = %d %q, want 200 with %q; log:\n%s", status, body, tc.body, c.log())
			}
			if uid := c.uid(); uid != "65532" {
				t.Errorf("process uid %s, want 65532", uid)
			}
			if tc.deepLink {
				status, deep, _ := c.get("/some/route")
				if status != http.StatusOK || deep != body {
					t.Errorf("GET /some/route = %d, want index.html", status)
				}
				if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
					t.Errorf("index.html content type %q", ct)
				}
				if status, _, _ := c.get("/missing.png"); status != http.StatusNotFound {
					t.Errorf("GET /missing.png = %d, want 404", status)
				}
			}
			for path, want := range tc.pages {
				if status, body, _ := c.get(path); status != http.StatusOK || !strings.Contains(body, want) {
					t.Errorf("GET %s = %d %q, want 200 with %q", path, status, body, want)
				}
			}
			for _, p := range append(tc.absent, "app/.git", "app/.env") {
				if c.exists(p) {
					t.Errorf("/%s is in the image", p)
				}
			}
			if tc.fixture == "node-express" {
				// Orphans are reaped: tini (from the base) is PID 1.
				if status, _, _ := c.get("/spawn"); status != http.StatusOK {
					t.Fatalf("GET /spawn = %d", status)
				}
				time.Sleep(1500 * time.Millisecond)
				if z := c.zombies(); len(z) > 0 {
					t.Errorf("zombie processes in the container: %v", z)
				}
				cfg, _ := layoutImage(t, out).ConfigFile()
				if cfg.Config.Entrypoint[0] != "/usr/bin/tini" {
					t.Errorf("entrypoint %v, want tini from the base first", cfg.Config.Entrypoint)
				}
			}
			if d := c.stop(); d.Seconds() > 2 {
				t.Errorf("container took %s to stop on SIGTERM", d)
			}
		})
	}
}

// TestNodeDependencyLayerCache: a source-only change does not run the
// installer and keeps the dependency layer; a lockfile change rebuilds it.
func TestNodeDependencyLayerCache(t *testing.T) {
	testutil.NeedTool(t, "npm", "install Node.js")
	base := testutil.DebianBase(t)
	dir := testutil.CopyFixture(t, "node-express")
	env := nodeEnv(t)
	build := func() (v1.Image, string) { return buildOnBase(t, env, dir, base) }
	img1, _ := build()
	src := filepath.Join(dir, "server.js")
	b, _ := os.ReadFile(src)
	os.WriteFile(src, []byte(strings.Replace(string(b), "hello from express", "hello again", 1)), 0o644)
	img2, log2 := build()
	if !strings.Contains(log2, "step deps (linux/") || !strings.Contains(log2, "inputs unchanged, skipped") || strings.Contains(log2, "added ") {
		t.Errorf("source-only change ran the installer:\n%s", log2)
	}
	if layerByComment(t, img1, "deps") != layerByComment(t, img2, "deps") {
		t.Errorf("deps layer changed after a source-only change")
	}
	if layerByComment(t, img1, "app") == layerByComment(t, img2, "app") {
		t.Errorf("app layer did not change after a source change")
	}
	// A script or version change in package.json is not a dependency change.
	pj := filepath.Join(dir, "package.json")
	b, _ = os.ReadFile(pj)
	os.WriteFile(pj, []byte(strings.Replace(string(b), `"version": "1.0.0"`, `"version": "1.0.1"`, 1)), 0o644)
	_, log3 := build()
	if !strings.Contains(log3, "inputs unchanged, skipped") {
		t.Errorf("a version bump reinstalled dependencies:\n%s", log3)
	}
	// A dependency change does.
	cmd := exec.Command("npm", "install", "--package-lock-only", "--no-audit", "--no-fund", "ms@2.1.3")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install ms: %v\n%s", err, out)
	}
	img4, log4 := build()
	if strings.Contains(log4, "inputs unchanged, skipped") {
		t.Errorf("a lockfile change did not rerun the installer:\n%s", log4)
	}
	if layerByComment(t, img1, "deps") == layerByComment(t, img4, "deps") {
		t.Errorf("deps layer unchanged after a lockfile change")
	}
}

// TestNodeBadInput: each mistake gives a clear error naming the fix and
// writes nothing.
func TestNodeBadInput(t *testing.T) {
	testutil.NeedTool(t, "npm", "install Node.js")
	for _, tc := range []struct {
		description string
		mutate      func(dir string)
		want        string
	}{
		{"invalid package.json", func(dir string) {
			os.WriteFile(filepath.Join(dir, "package.json"), []byte("{\n  \"name\": \"x\",\n  \"dependencies\": {,}\n}\n"), 0o644)
		}, "package.json:3: invalid JSON"},
		{"two lockfiles", func(dir string) {
			os.WriteFile(filepath.Join(dir, "yarn.lock"), []byte("# yarn lockfile v1\n"), 0o644)
		}, "conflicting lockfiles package-lock.json and yarn.lock"},
		{"no lockfile", func(dir string) { os.Remove(filepath.Join(dir, "package-lock.json")) }, "no lockfile"},
		{"lockfile out of sync", func(dir string) {
			pj := filepath.Join(dir, "package.json")
			b, _ := os.ReadFile(pj)
			os.WriteFile(pj, []byte(strings.Replace(string(b), `"express": "^4.21.2"`, `"express": "^4.21.2", "left-pad": "1.3.0"`, 1)), 0o644)
		}, "run `npm install` and commit package-lock.json"},
		{"no way to start", func(dir string) {
			pj := filepath.Join(dir, "package.json")
			b, _ := os.ReadFile(pj)
			s := strings.Replace(string(b), `"main": "server.js",`, "", 1)
			s = strings.Replace(s, `"start": "node server.js",`, "", 1)
			os.WriteFile(pj, []byte(s), 0o644)
			os.Rename(filepath.Join(dir, "server.js"), filepath.Join(dir, "main-server.js"))
		}, "no way to start the app"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			dir := testutil.CopyFixture(t, "node-express")
			tc.mutate(dir)
			before, _ := os.ReadFile(filepath.Join(dir, "package.json"))
			out := filepath.Join(t.TempDir(), "layout")
			r := packer(t, nodeEnv(t), "build", dir, "-o", "oci:"+out, "--base", "scratch")
			if r.err == nil {
				t.Fatalf("build succeeded")
			}
			// The error is the end of the log: its first line says what
			// failed and what to do; a failed step's last line is the
			// tool's own cause.
			i := strings.LastIndex(r.stderr, "packer: error: ")
			if i < 0 || !strings.Contains(r.stderr[i:], tc.want) {
				t.Errorf("error %q, want one containing %q", r.stderr[max(i, 0):], tc.want)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if last := lines[len(lines)-1]; strings.Contains(r.stderr[max(i, 0):], "failed (") && !strings.HasPrefix(last, "cause: ") {
				t.Errorf("a failed step's last line %q does not name the cause", last)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("layout written")
			}
			if after, _ := os.ReadFile(filepath.Join(dir, "package.json")); string(after) != string(before) {
				t.Errorf("package.json was modified")
			}
			if _, err := os.Stat(filepath.Join(dir, "node_modules")); err == nil {
				t.Errorf("node_modules appeared in the user's directory")
			}
		})
	}
}

// TestNodeWorkspace builds one package of an npm workspace monorepo: only
// it, the workspace packages it depends on and their production
// dependencies are shipped.
func TestNodeWorkspace(t *testing.T) {
	t.Parallel()
	testutil.NeedTool(t, "npm", "install Node.js")
	base := testutil.DebianBase(t)
	for _, tc := range []struct {
		fixture string
		prepare []string
		absent  []string // another workspace's package and its dependency
	}{
		{"node-npm-workspace", nil, []string{"app/packages/web", "app/node_modules/left-pad"}},
		{"node-pnpm-workspace", nil, []string{"app/packages/web", "app/node_modules/left-pad", "app/node_modules/.pnpm/left-pad@1.3.0"}},
		{"node-yarn-workspace", []string{"corepack", "yarn", "install", "--ignore-scripts", "--non-interactive"}, []string{"app/packages/web", "app/node_modules/left-pad"}},
		{"node-yarn4-workspace", nil, []string{"app/packages/web", "app/node_modules/left-pad"}},
		{"node-bun-workspace", nil, []string{"app/packages/web", "app/node_modules/left-pad"}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			t.Parallel()
			dir := nodeFixture(t, tc.fixture, tc.prepare)
			r := packer(t, nodeEnv(t), "build", dir)
			if r.err == nil || !strings.Contains(r.stderr, "choose the package to build with --target DIR") {
				t.Errorf("monorepo without --target: %v\n%s", r.err, r.stderr)
			}
			out := filepath.Join(t.TempDir(), "layout")
			r = packer(t, nodeEnv(t), "build", dir, "--target", "packages/api", "--base", base, "-o", "oci:"+out, "-t", "api:v1")
			if r.err != nil {
				t.Fatalf("build: %v\n%s", r.err, r.stderr)
			}
			c := runLayout(t, out, "v1")
			status, body, _ := c.get("/")
			if status != http.StatusOK || !strings.Contains(body, "hello from the workspace lib, api") || (tc.fixture == "node-pnpm-workspace" && !strings.Contains(body, "(1m)")) {
				t.Fatalf("GET / = %d %q; log:\n%s", status, body, c.log())
			}
			for _, p := range tc.absent {
				if c.exists(p) {
					t.Errorf("/%s is in the image; only packages/api and what it depends on belong there", p)
				}
			}
			for _, p := range []string{"app/packages/lib/index.js", "app/packages/api/server.js"} {
				if !c.exists(p) {
					t.Errorf("/%s is missing", p)
				}
			}
			if strings.Contains(tc.fixture, "yarn") {
				// yarn 4's workspaces focus and yarn 1's workspace install
				// (whose --frozen-lockfile is not enforced in workspaces)
				// would resolve a dependency the lockfile lacks; packer
				// refuses it.
				pj := filepath.Join(dir, "packages", "api", "package.json")
				b, _ := os.ReadFile(pj)
				os.WriteFile(pj, bytes.Replace(b, []byte(`"express"`), []byte(`"is-number": "7.0.0", "express"`), 1), 0o644)
				out := filepath.Join(t.TempDir(), "stale")
				r := packer(t, nodeEnv(t), "build", dir, "--target", "packages/api", "--base", base, "-o", "oci:"+out, "-t", "api:v1")
				if r.err == nil || !strings.Contains(r.stderr, "yarn.lock does not match package.json") {
					t.Errorf("lockfile out of sync: want a clear error, got %v\n%s", r.err, r.stderr)
				}
				if _, err := os.Stat(out); err == nil {
					t.Errorf("a failed build left %s", out)
				}
			}
		})
	}
}

// TestNodeBuildRebuildSkipsInstall: after a source change in an app with a
// build script, neither install runs again; the cached dev dependencies are
// put back for the build, and the new build output ships.
func TestNodeBuildRebuildSkipsInstall(t *testing.T) {
	testutil.NeedTool(t, "npm", "install Node.js")
	dir := testutil.CopyFixture(t, "node-ts-build")
	env := nodeEnv(t)
	mustPacker(t, env, "build", dir, "--base", "scratch", "-o", "oci:"+filepath.Join(t.TempDir(), "a"), "-t", "app:v1")
	src := filepath.Join(dir, "src", "server.ts")
	b, _ := os.ReadFile(src)
	os.WriteFile(src, []byte(strings.Replace(string(b), "hello from typescript", "hello again", 1)), 0o644)
	out := filepath.Join(t.TempDir(), "b")
	r := packer(t, env, "build", dir, "--base", "scratch", "-o", "oci:"+out, "-t", "app:v1")
	if r.err != nil {
		t.Fatalf("rebuild: %v\n%s", r.err, r.stderr)
	}
	for _, want := range []string{"step devdeps (linux/amd64): inputs unchanged, skipped", "put its cached output back", "step build (linux/amd64): sh -c npm run build"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("rebuild log lacks %q:\n%s", want, r.stderr)
		}
	}
	files := layerFiles(t, layoutImage(t, out))
	if !strings.Contains(files["app/dist/server.js"], "hello again") {
		t.Errorf("dist/server.js was not rebuilt")
	}
	for name := range files {
		if strings.Contains(name, "node_modules/typescript") {
			t.Fatalf("a dev dependency is in the image: %s", name)
		}
	}
}

// baseWithout writes base (oci:DIR:TAG) plus a layer that deletes paths
// (OCI whiteouts) as a new layout, as a slim base without them would be.
func baseWithout(t *testing.T, base string, paths ...string) string {
	t.Helper()
	ref := strings.TrimPrefix(base, "oci:")
	i := strings.LastIndex(ref, ":")
	img := layoutImage(t, ref[:i])
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		dir, name := path.Split(p)
		tw.WriteHeader(&tar.Header{Name: dir + ".wh." + name, Typeflag: tar.TypeReg, Mode: 0o644})
	}
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.AppendLayers(img, l); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "slim"})); err != nil {
		t.Fatal(err)
	}
	return "oci:" + dir + ":slim"
}

// TestNodeInitWithoutTini: on a base without tini (like node:*-slim)
// packer's bash init is PID 1: orphans are reaped and SIGTERM still stops
// the container in time. The control, a base without tini or bash, shows
// the check sees zombies when nothing reaps them.
func TestNodeInitWithoutTini(t *testing.T) {
	t.Parallel()
	testutil.NeedTool(t, "npm", "install Node.js")
	debian := testutil.DebianBase(t)
	dir := testutil.CopyFixture(t, "node-express")
	env := nodeEnv(t)
	for _, tc := range []struct {
		name       string
		whiteout   []string
		entrypoint string
		zombies    bool
	}{
		{"no tini", []string{"usr/bin/tini"}, "/opt/packer/init", false},
		{"no tini, no bash", []string{"usr/bin/tini", "usr/bin/bash"}, "node", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := baseWithout(t, debian, tc.whiteout...)
			out := filepath.Join(t.TempDir(), "layout")
			r := packer(t, env, "build", dir, "--base", base, "-o", "oci:"+out, "-t", "app:v1")
			if r.err != nil {
				t.Fatalf("build: %v\n%s", r.err, r.stderr)
			}
			cfg, _ := layoutImage(t, out).ConfigFile()
			if cfg.Config.Entrypoint[0] != tc.entrypoint {
				t.Errorf("entrypoint %v, want %s first", cfg.Config.Entrypoint, tc.entrypoint)
			}
			c := runLayout(t, out, "v1")
			if status, body, _ := c.get("/"); status != http.StatusOK || !strings.Contains(body, `"uid":65532`) {
				t.Fatalf("GET / = %d %q; log:\n%s", status, body, c.log())
			}
			for range 3 {
				if status, _, _ := c.get("/spawn"); status != http.StatusOK {
					t.Fatalf("GET /spawn = %d", status)
				}
			}
			time.Sleep(1500 * time.Millisecond)
			if z := c.zombies(); (len(z) > 0) != tc.zombies {
				t.Errorf("zombie processes in the container: %v (want some: %v)", z, tc.zombies)
			}
			if d := c.stop(); d.Seconds() > 2 {
				t.Errorf("container took %s to stop on SIGTERM", d)
			}
		})
	}
}

// TestNodeNativeAddon: a dependency whose install script compiles a
// Node-API addon (node-gyp, on this machine) works in an image for this
// machine's architecture; for another architecture the build stops,
// naming the package, and writes nothing.
func TestNodeNativeAddon(t *testing.T) {
	t.Parallel()
	testutil.NeedTool(t, "npm", "install Node.js")
	testutil.NeedTool(t, "make", "apt-get install build-essential (node-gyp compiles the addon)")
	testutil.NeedTool(t, "g++", "apt-get install build-essential (node-gyp compiles the addon)")
	base := testutil.DebianBase(t)
	dir := nodeFixture(t, "node-native-addon", []string{"npm", "pack", "./addon"}, []string{"npm", "install", "--package-lock-only", "--no-audit", "--no-fund"})
	env := nodeEnv(t)
	out := filepath.Join(t.TempDir(), "layout")
	r := packer(t, env, "build", dir, "--base", base, "-o", "oci:"+out, "-t", "app:v1")
	if r.err != nil {
		t.Fatalf("build: %v\n%s", r.err, r.stderr)
	}
	c := runLayout(t, out, "v1")
	if status, body, _ := c.get("/"); status != http.StatusOK || !strings.Contains(body, "hello from a native addon") {
		t.Fatalf("GET / = %d %q; log:\n%s", status, body, c.log())
	}

	other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	if other == "" {
		t.Skipf("SKIP: no other architecture to cross-build for from %s", runtime.GOARCH)
	}
	out2 := filepath.Join(t.TempDir(), "cross")
	r = packer(t, env, "build", dir, "--base", "scratch", "--platform", "linux/"+other, "-o", "oci:"+out2, "-t", "app:v1")
	if r.err == nil || !strings.Contains(r.stderr, "package hello-addon was compiled on this machine") || !strings.Contains(r.stderr, "native code for "+runtime.GOARCH) {
		t.Errorf("cross-architecture native addon: want an error naming hello-addon, got %v\n%s", r.err, r.stderr)
	}
	if _, err := os.Stat(out2); err == nil {
		t.Errorf("a failed build left %s", out2)
	}
}

// TestNodeWorkspaceFrontends: a Next.js app (npm) and a Vite SPA (pnpm) of
// a monorepo, each using a workspace package, build with --target and
// answer 200 under runc: Next.js from its standalone output (traced from the
// workspace root), the SPA as static files with no node_modules; their
// sources do not ship.
func TestNodeWorkspaceFrontends(t *testing.T) {
	t.Parallel()
	testutil.NeedTool(t, "npm", "install Node.js")
	base := testutil.DebianBase(t)
	for _, tc := range []struct {
		fixture, body   string
		present, absent []string
	}{
		{"node-next-workspace", "hello from the workspace ui, next",
			[]string{"app/apps/web/server.js", "app/apps/web/.next/static", "app/apps/web/public/robots.txt"},
			[]string{"app/apps/web/app/page.js", "app/apps/web/.next/cache", "app/node_modules/typescript"}},
		{"node-vite-workspace", `<div id="root">`,
			[]string{"app/public/index.html", "app/server.js"},
			[]string{"app/node_modules", "app/apps", "app/packages"}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			t.Parallel()
			if testing.Short() && strings.Contains(tc.fixture, "next") {
				t.Skip("SKIP: -short skips the Next.js build (about a minute)")
			}
			dir := testutil.CopyFixture(t, tc.fixture)
			out := filepath.Join(t.TempDir(), "layout")
			r := packer(t, nodeEnv(t), "build", dir, "--target", "apps/web", "--base", base, "-o", "oci:"+out, "-t", "web:v1")
			if r.err != nil {
				t.Fatalf("build: %v\n%s", r.err, r.stderr)
			}
			c := runLayout(t, out, "v1")
			status, body, _ := c.get("/")
			if status != http.StatusOK || !strings.Contains(body, tc.body) {
				t.Fatalf("GET / = %d %q; log:\n%s", status, body, c.log())
			}
			if uid := c.uid(); uid != "65532" {
				t.Errorf("process uid %s, want 65532", uid)
			}
			if strings.Contains(tc.fixture, "vite") {
				// The workspace package is bundled into the SPA's assets.
				if status, deep, _ := c.get("/some/route"); status != http.StatusOK || deep != body {
					t.Errorf("GET /some/route = %d, want index.html", status)
				}
				files := layerFiles(t, layoutImage(t, out))
				bundled := false
				for name, content := range files {
					if strings.HasPrefix(name, "app/public/assets/") && strings.Contains(content, "hello from the workspace ui") {
						bundled = true
					}
				}
				if !bundled {
					t.Errorf("no asset under /app/public/assets holds the workspace package's code")
				}
			}
			for _, p := range tc.present {
				if !c.exists(p) {
					t.Errorf("/%s is missing", p)
				}
			}
			for _, p := range tc.absent {
				if c.exists(p) {
					t.Errorf("/%s is in the image", p)
				}
			}
			if d := c.stop(); d.Seconds() > 2 {
				t.Errorf("container took %s to stop on SIGTERM", d)
			}
		})
	}
}

// TestNodeNextExportRebuild: after a page changes, the rebuild of a static
// export skips the install and moves only the exported files' layer.
func TestNodeNextExportRebuild(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("SKIP: -short skips the Next.js builds")
	}
	testutil.NeedTool(t, "npm", "install Node.js")
	base := testutil.DebianBase(t)
	dir := nodeFixture(t, "node-next-export")
	env := nodeEnv(t)
	build := func() (v1.Image, string) { return buildOnBase(t, env, dir, base) }
	first, _ := build()
	page := filepath.Join(dir, "app", "page.js")
	b, _ := os.ReadFile(page)
	os.WriteFile(page, []byte(strings.Replace(string(b), "hello from a static next export", "hello again from a static next export", 1)), 0o644)
	second, log := build()
	if !strings.Contains(log, "step devdeps (linux/amd64): inputs unchanged, skipped") {
		t.Errorf("the rebuild ran the install:\n%s", log)
	}
	for _, name := range []string{"packer", "server"} {
		if layerByComment(t, first, name) != layerByComment(t, second, name) {
			t.Errorf("layer %s changed on a page edit", name)
		}
	}
	if layerByComment(t, first, "static") == layerByComment(t, second, "static") {
		t.Errorf("the exported files' layer did not change")
	}
}

// TestNodePnpmFollowsLockfile: without packageManager, pnpm's major comes
// from pnpm-lock.yaml's lockfileVersion (9.0: pnpm 10), not corepack's
// newest; the app installs and answers.
func TestNodePnpmFollowsLockfile(t *testing.T) {
	t.Parallel()
	testutil.NeedTool(t, "corepack", "install Node.js")
	base := testutil.DebianBase(t)
	dir := nodeFixture(t, "node-fastify-pnpm")
	pj := filepath.Join(dir, "package.json")
	b, _ := os.ReadFile(pj)
	var pkg map[string]any
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	delete(pkg, "packageManager")
	b, _ = json.MarshalIndent(pkg, "", "  ")
	os.WriteFile(pj, b, 0o644)
	out := filepath.Join(t.TempDir(), "layout")
	r := packer(t, nodeEnv(t), "build", dir, "--base", base, "-o", "oci:"+out, "-t", "app:v1")
	if r.err != nil {
		t.Fatalf("build: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stderr, "corepack pnpm@10 install") {
		t.Errorf("the install did not run pnpm 10:\n%s", r.stderr)
	}
	c := runLayout(t, out, "v1")
	if status, body, _ := c.get("/"); status != http.StatusOK || !strings.Contains(body, `"uid":65532`) {
		t.Fatalf("GET / = %d %q; log:\n%s", status, body, c.log())
	}
	c.stop()
}

// TestNodeSourceChangeRebuild: for workspace roots that are the app (npm,
// pnpm, bun) and a Plug'n'Play app, a source change skips the install and keeps the
// dependency layer; only the app layer moves.
func TestNodeSourceChangeRebuild(t *testing.T) {
	testutil.NeedTool(t, "npm", "install Node.js")
	for _, tc := range []struct {
		fixture, edit string
		base          func(testing.TB) string
		kept          []string // layers besides deps that must not move
	}{
		{"node-npm-workspace-root", "packages/api/server.js", testutil.DebianBase, nil},
		{"node-yarn-pnp", "server.js", testutil.DebianBase, nil},
		{"node-pnpm-workspace-root", "packages/api/server.js", testutil.DebianBase, []string{"pm"}},
		{"node-bun-workspace-root", "packages/shared/index.ts", testutil.BunBase, nil},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			base := tc.base(t)
			dir := nodeFixture(t, tc.fixture)
			env := nodeEnv(t)
			build := func() (v1.Image, string) { return buildOnBase(t, env, dir, base) }
			first, _ := build()
			src := filepath.Join(dir, tc.edit)
			b, _ := os.ReadFile(src)
			os.WriteFile(src, append(b, []byte("\n// a source-only change\n")...), 0o644)
			second, log := build()
			if !strings.Contains(log, "step deps (linux/amd64): inputs unchanged, skipped") {
				t.Errorf("the rebuild ran the install:\n%s", log)
			}
			for _, name := range append([]string{"deps"}, tc.kept...) {
				if layerByComment(t, first, name) != layerByComment(t, second, name) {
					t.Errorf("layer %s changed on a source edit", name)
				}
			}
			if layerByComment(t, first, "app") == layerByComment(t, second, "app") {
				t.Errorf("the app layer did not change")
			}
		})
	}
}

// TestBunRuntime: a bun workspace whose root is the app (bun init's
// "module": "index.ts", importing its workspace packages, one with a
// dependency of its own) builds on a base with Bun, runs on Bun under runc
// as uid 65532, and ships no dev dependencies.
func TestBunRuntime(t *testing.T) {
	t.Parallel()
	base := testutil.BunBase(t)
	dir := nodeFixture(t, "node-bun-workspace-root")
	out := filepath.Join(t.TempDir(), "layout")
	r := packer(t, nodeEnv(t), "build", dir, "--base", base, "-o", "oci:"+out, "-t", "app:v1")
	if r.err != nil {
		t.Fatalf("build: %v\n%s", r.err, r.stderr)
	}
	c := runLayout(t, out, "v1")
	want := "hello from the bun workspace root (bun " + testutil.BunVersion + ", uid 65532)"
	if status, body, _ := c.get("/"); status != http.StatusOK || body != want {
		t.Fatalf("GET / = %d %q, want 200 %q; log:\n%s", status, body, want, c.log())
	}
	if c.exists("app/node_modules/@types") {
		t.Errorf("a dev dependency (@types/bun) is in the image")
	}
	if !c.exists("app/packages/api/node_modules/hono") {
		t.Errorf("the workspace package's own dependency (hono) is not shipped")
	}
	if d := c.stop(); d.Seconds() > 2 {
		t.Errorf("container took %s to stop on SIGTERM", d)
	}
}

// TestRegistryCache: a build with --cache-to leaves its step and layer
// cache in the registry; on a fresh machine (an empty cache dir) a build
// with --cache-from skips npm ci, fetches the dependency layer and gives
// the same digest; a cache tag that does not exist yet is a cold build.
func TestRegistryCache(t *testing.T) {
	t.Parallel()
	testutil.NeedTool(t, "npm", "install Node.js")
	base := testutil.DebianBase(t)
	reg := startRegistry(t, "")
	dir := nodeFixture(t, "node-express")
	cache := reg + "/team/express-cache:main"
	build := func(cacheDir string, args ...string) (string, string) {
		out := filepath.Join(t.TempDir(), "layout")
		r := packer(t, nodeEnv(t), append([]string{"build", dir, "--base", base, "-o", "oci:" + out, "-t", "app:v1", "--cache-dir", cacheDir}, args...)...)
		if r.err != nil {
			t.Fatalf("build: %v\n%s", r.err, r.stderr)
		}
		d, _ := layoutImage(t, out).Digest()
		return d.String(), r.stderr
	}
	first, log := build(t.TempDir(), "--cache-to", "registry:"+cache)
	if !strings.Contains(log, "registry cache "+cache+": wrote this build's") || !strings.Contains(log, "step deps (linux/amd64): npm") {
		t.Fatalf("the first build did not install and write the cache:\n%s", log)
	}
	img, err := remote.Image(mustRef(t, cache))
	if err != nil {
		t.Fatalf("the cache artifact: %v", err)
	}
	if m, _ := img.Manifest(); m.ArtifactType != "application/vnd.dev.packer.cache.v1" || len(m.Layers) == 0 {
		t.Errorf("cache artifact manifest: %+v", m)
	}
	second, log := build(t.TempDir(), "--cache-from", "type=registry,ref="+cache)
	if !strings.Contains(log, "step deps (linux/amd64): inputs unchanged, skipped") {
		t.Errorf("the fresh machine ran the installer although the registry cache had it:\n%s", log)
	}
	if second != first {
		t.Errorf("the build from the registry cache gave %s, the first %s", second, first)
	}
	_, log = build(t.TempDir(), "--cache-from", "registry:"+reg+"/team/express-cache:none")
	if !strings.Contains(log, "is empty: a cold build") || strings.Contains(log, "inputs unchanged, skipped") {
		t.Errorf("a missing cache tag:\n%s", log)
	}
	// A lockfile change: the registry cache cannot help, and the log says why.
	pj := filepath.Join(dir, "package.json")
	b, _ := os.ReadFile(pj)
	os.WriteFile(pj, []byte(strings.Replace(string(b), `"dependencies": {`, `"dependencies": {`+"\n    \"ms\": \"2.1.3\",", 1)), 0o644)
	r := packer(t, nodeEnv(t), "build", dir, "--base", base, "-o", "oci:"+filepath.Join(t.TempDir(), "l"), "-t", "app:v1", "--cache-dir", t.TempDir(), "--cache-from", "registry:"+cache)
	if !strings.Contains(r.stderr, "step deps (linux/amd64): not in the local or the registry cache") {
		t.Errorf("a changed dependency with --cache-from does not say why the cache missed: %v\n%s", r.err, r.stderr)
	}
}
