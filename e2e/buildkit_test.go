package e2e

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/packer-build/packer/internal/testutil"
)

// startBuildkitd runs buildkitd (built by scripts/tools.sh from the Go
// module proxy; testutil.StartBuildkitd) for the test's lifetime and
// returns its address.
func startBuildkitd(t *testing.T, registryHost string) string {
	t.Helper()
	bin := testutil.NeedTool(t, "buildkitd", "scripts/tools.sh builds it")
	testutil.NeedTool(t, "runc", "apt-get install runc")
	if os.Geteuid() != 0 {
		// Rootless buildkitd needs rootlesskit, which is not packaged
		// here; CI runs as root.
		if testutil.InCI() {
			t.Fatalf("buildkitd's runc worker needs root here, and CI runs these tests as root")
		}
		t.Skip("SKIP: buildkitd's runc worker needs root here; this end-to-end check did not run")
	}
	addr, stop, err := testutil.StartBuildkitd(bin, registryHost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}

// pushBase copies an "oci:DIR:TAG" test base to host/packer-test/name
// and returns that reference.
func pushBase(t *testing.T, layout, host, name string) string {
	t.Helper()
	testutil.NeedTool(t, "skopeo", "apt-get install skopeo")
	ref := host + "/packer-test/" + name
	run(t, "skopeo", "copy", "-q", "--dest-tls-verify=false", layout, "docker://"+ref)
	return ref
}

// TestBuildKitBuilder: --builder buildkit solves the plan on a real
// buildkitd: an npm server on the Node.js test base pulled from a local
// registry, pushed to that registry with its SBOM, and written to a
// layout that runs under runc, answering 200 as uid 65532. The image's
// base layers are the registry's own (not rewritten), and the layers
// follow the plan's order: packer's files, dependencies, app.
func TestBuildKitBuilder(t *testing.T) {
	host := startRegistry(t, "")
	addr := startBuildkitd(t, host)
	base := pushBase(t, testutil.NodeBase(t), host, "node:22")
	dir := testutil.CopyFixture(t, "node-express")
	layout := filepath.Join(t.TempDir(), "layout")
	ref := host + "/team/express:bk"
	// The app asks for Node.js 20.x and the base has 22: refused, as the
	// daemonless path refuses it, with nothing written.
	res := packer(t, nil, "build", dir, "--builder", "buildkit", "--buildkit-addr", addr, "--base", base, "-o", "oci:"+layout)
	if res.err == nil || !strings.Contains(res.stderr, "has Node.js 22.12.0 (its NODE_VERSION), but the build needs Node.js 20") {
		t.Errorf("a base outside engines.node: %v\n%s", res.err, res.stderr)
	}
	if _, err := os.Stat(layout); err == nil {
		t.Errorf("the refused build wrote %s", layout)
	}
	acceptNode22(t, dir)
	res = packer(t, nil, "build", dir, "--builder", "buildkit", "--buildkit-addr", addr, "--base", base,
		"--push", "-t", ref, "-o", "oci:"+layout)
	if res.err != nil {
		t.Fatalf("packer build --builder buildkit: %v\n%s", res.err, res.stderr)
	}
	for _, want := range []string{"building on BuildKit at " + addr, "step deps: npm ci", "layer app: the context → /app"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("log lacks %q:\n%s", want, res.stderr)
		}
	}
	c := runLayout(t, layout, "bk")
	code, body, _ := c.get("/")
	if code != 200 || !strings.Contains(body, "hello from express") {
		t.Errorf("GET / = %d %q; log:\n%s", code, body, c.log())
	}
	if uid := c.uid(); uid != "65532" {
		t.Errorf("the app runs as uid %s, want 65532", uid)
	}
	if !c.exists("/app/node_modules/express/package.json") || c.exists("/app/node_modules/@types/express") {
		t.Errorf("the production dependencies are not in the image, or a dev one is")
	}
	if spdx := mustPacker(t, nil, "sbom", ref); !strings.Contains(spdx, "pkg:npm/express@") {
		t.Errorf("the pushed image's SBOM lacks express")
	}
	// The image config is the daemonless path's: the same build without
	// BuildKit. Only the entrypoint's init differs (packer's init script,
	// which execs the base's tini, in place of tini itself).
	own := filepath.Join(t.TempDir(), "own")
	mustPacker(t, nil, "build", dir, "--base", base, "-o", "oci:"+own, "-t", "app:own")
	bkCfg, _ := layoutImage(t, layout).ConfigFile()
	ownCfg, _ := layoutImage(t, own).ConfigFile()
	if !slices.Equal(bkCfg.Config.Env, ownCfg.Config.Env) || bkCfg.Config.User != ownCfg.Config.User || bkCfg.Config.WorkingDir != ownCfg.Config.WorkingDir ||
		!maps.Equal(bkCfg.Config.ExposedPorts, ownCfg.Config.ExposedPorts) || !slices.Equal(bkCfg.Config.Cmd, ownCfg.Config.Cmd) || !bkCfg.Created.Equal(ownCfg.Created.Time) {
		t.Errorf("image config differs from the daemonless build's:\nbuildkit: %+v %s\npacker:   %+v %s", bkCfg.Config, bkCfg.Created, ownCfg.Config, ownCfg.Created)
	}
	if e, o := bkCfg.Config.Entrypoint, ownCfg.Config.Entrypoint; len(e) < 2 || len(o) < 2 || e[len(e)-2] != o[len(o)-2] || e[len(e)-1] != o[len(o)-1] {
		t.Errorf("entrypoints: buildkit %q, packer %q", e, o)
	}
	baseLayers := layerDigests(t, "docker://"+base)
	got := layerDigests(t, "oci:"+layout+":bk")
	if len(got) != len(baseLayers)+3 {
		t.Fatalf("image layers %d, want the base's %d + packer's files, deps, app", len(got), len(baseLayers))
	}
	for i := range baseLayers {
		if got[i] != baseLayers[i] {
			t.Errorf("base layer %d is %s in the image, %s in the registry: rewritten", i, got[i], baseLayers[i])
		}
	}
}

// TestBuildKitPlatformsInOneRequest: a Go server for linux/amd64 and
// linux/arm64 in one BuildKit request, both cross-compiled on the
// daemon's own platform in the plan's build image (no emulation): the
// index holds both, the amd64 image answers under runc as 65532, and the
// arm64 one holds an arm64 binary on packer's static base.
func TestBuildKitPlatformsInOneRequest(t *testing.T) {
	host := startRegistry(t, "")
	addr := startBuildkitd(t, host)
	goImage := pushBase(t, testutil.GoBuilderBase(t), host, "golang:1")
	dir := testutil.CopyFixture(t, "go-server")
	plan := filepath.Join(t.TempDir(), "plan.json")
	p := mustPacker(t, nil, "plan", dir, "--json")
	os.WriteFile(plan, []byte(strings.Replace(p, `"buildImage": "golang:1.22"`, `"buildImage": "`+goImage+`"`, 1)), 0o644)
	layout := filepath.Join(t.TempDir(), "layout")
	res := packer(t, nil, "build", dir, "--plan", plan, "--builder", "buildkit", "--buildkit-addr", addr,
		"--platform", "linux/amd64,linux/arm64", "-o", "oci:"+layout, "-t", "go:bk")
	if res.err != nil {
		t.Fatalf("packer build --builder buildkit --platform linux/amd64,linux/arm64: %v\n%s", res.err, res.stderr)
	}
	if !strings.Contains(res.stderr, "BuildKit built linux/amd64, linux/arm64") {
		t.Errorf("log:\n%s", res.stderr)
	}
	idx := run(t, "skopeo", "inspect", "--raw", "oci:"+layout+":bk")
	for _, want := range []string{`"architecture":"amd64"`, `"architecture":"arm64"`} {
		if !strings.Contains(strings.ReplaceAll(idx, " ", ""), want) {
			t.Errorf("the index lacks %s:\n%s", want, idx)
		}
	}
	// umoci takes one image per tag: the amd64 one, copied out.
	single := filepath.Join(t.TempDir(), "amd64")
	run(t, "skopeo", "copy", "-q", "--override-arch", "amd64", "oci:"+layout+":bk", "oci:"+single+":bk")
	c := runLayout(t, single, "bk")
	if code, body, _ := c.get("/"); code != 200 || !strings.Contains(body, "hello from packer") {
		t.Errorf("GET / = %d %q", code, body)
	}
	if uid := c.uid(); uid != "65532" {
		t.Errorf("uid %s, want 65532", uid)
	}
	arm := filepath.Join(t.TempDir(), "arm")
	run(t, "skopeo", "copy", "-q", "--override-arch", "arm64", "oci:"+layout+":bk", "dir:"+arm)
	found := false
	filepath.WalkDir(arm, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		out, _ := exec.Command("sh", "-c", "tar -xzOf "+p+" app/hello-server 2>/dev/null | head -c 20 | od -An -tx1").Output()
		// ELF e_machine 0xb7 (AArch64) at offset 18.
		if f := strings.Fields(string(out)); len(f) >= 20 && f[18] == "b7" && f[19] == "00" {
			found = true
		}
		return nil
	})
	if !found {
		t.Errorf("the arm64 image has no arm64 /app/hello-server")
	}
}

// acceptNode22 widens the fixture's engines.node (20.x) to the Node.js
// test base's 22.
func acceptNode22(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, "package.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(`"node": "20.x"`), []byte(`"node": ">=20"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// layerDigests lists an image's layer digests (skopeo inspect).
func layerDigests(t *testing.T, ref string) []string {
	t.Helper()
	out := run(t, "skopeo", "inspect", "--tls-verify=false", "--format", "{{range .Layers}}{{.}} {{end}}", ref)
	return strings.Fields(out)
}

// TestBuildKitRegistryCache: with --builder buildkit, --cache-to and
// --cache-from are BuildKit's registry cache. A first daemon builds and
// exports it; a second, fresh daemon (an empty CI runner's) imports it
// and, after a source-only change, reuses the dependency install instead
// of running npm ci again.
func TestBuildKitRegistryCache(t *testing.T) {
	host := startRegistry(t, "")
	base := pushBase(t, testutil.NodeBase(t), host, "node:22")
	dir := testutil.CopyFixture(t, "node-express")
	acceptNode22(t, dir)
	cache := "registry:" + host + "/team/express-cache:bk"
	build := func(addr string, args ...string) string {
		t.Helper()
		res := packer(t, nil, append([]string{"build", dir, "--builder", "buildkit", "--buildkit-addr", addr, "--base", base,
			"-o", "oci:" + filepath.Join(t.TempDir(), "layout"), "-t", "app:bk"}, args...)...)
		if res.err != nil {
			t.Fatalf("packer build: %v\n%s", res.err, res.stderr)
		}
		return res.stderr
	}
	build(startBuildkitd(t, host), "--cache-to", cache)
	if out := run(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+host+"/team/express-cache:bk"); !strings.Contains(out, "layers") {
		t.Fatalf("no cache manifest in the registry:\n%s", out)
	}
	src := filepath.Join(dir, "server.js")
	b, _ := os.ReadFile(src)
	os.WriteFile(src, append(b, "\n// a source-only change\n"...), 0o644)
	log := build(startBuildkitd(t, host), "--cache-from", cache)
	// BuildKit's plain progress: "#N step deps: npm ci …" then "#N CACHED".
	var vertex string
	for _, line := range strings.Split(log, "\n") {
		if i := strings.Index(line, "#"); i >= 0 && strings.Contains(line, "step deps: npm ci") {
			vertex = strings.Fields(line[i:])[0]
			break
		}
	}
	if vertex == "" || !strings.Contains(log, vertex+" CACHED") {
		t.Errorf("the fresh daemon ran npm ci again instead of taking it from the registry cache (vertex %q):\n%s", vertex, log)
	}
	if !strings.Contains(log, "(0 steps run, 1 skipped)") {
		t.Errorf("the build's summary does not count npm ci as skipped:\n%s", log)
	}
	if !strings.Contains(log, "importing cache manifest from "+host+"/team/express-cache:bk") {
		t.Errorf("the log does not show the cache import:\n%s", log)
	}
}
