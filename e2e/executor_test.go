package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/internal/testutil"
)

// TestImageExecutorBuildsFromSource: the app pins markupsafe 2.1.1, which
// publishes no wheel for the image's Python 3.13, and this machine's
// python3 (outside a .python-version) is another version. By default the
// steps run inside the image, where pip builds it from source; the app
// answers under runc. With --executor host the build fails, naming the
// package, and writes nothing. packer plan says which executor runs.
func TestImageExecutorBuildsFromSource(t *testing.T) {
	t.Parallel()
	testutil.NeedTool(t, "unshare", "apt-get install util-linux")
	host := hostPython(t)
	v, err := exec.Command(host, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(v)) == "3.13" {
		t.Skip("SKIP: this machine's python3 is 3.13, the image's: the steps would run here")
	}
	base := testutil.DebianBase(t)
	dir := testutil.CopyFixture(t, "py-flask-sdist")
	env := cacheEnv(t)

	plan := mustPacker(t, env, "plan", dir)
	if !strings.Contains(plan, "executor:    linux/amd64: steps run inside the image: this machine has Python "+strings.TrimSpace(string(v))) {
		t.Errorf("packer plan does not say the steps run inside the image:\n%s", plan)
	}

	out := filepath.Join(t.TempDir(), "layout")
	r := packer(t, env, "build", dir, "--base", base, "-o", "oci:"+out, "-t", "app:v1")
	if r.err != nil {
		t.Fatalf("build: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stderr, "steps (linux/amd64) run inside the image: this machine has Python") || !strings.Contains(r.stderr, "Building wheel for markupsafe") {
		t.Errorf("the steps did not run inside the image, building markupsafe:\n%s", r.stderr)
	}
	c := runLayout(t, out, "v1")
	status, body, _ := c.get("/")
	if status != http.StatusOK || !strings.Contains(body, "hello from flask on markupsafe 2.1.1") {
		t.Fatalf("GET / = %d %q; log:\n%s", status, body, c.log())
	}
	c.stop()

	hostOut := filepath.Join(t.TempDir(), "host")
	r = packer(t, env, "build", dir, "--base", base, "--executor", "host", "-o", "oci:"+hostOut, "-t", "app:v1")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.err == nil || !strings.Contains(lines[len(lines)-1], "markupsafe==2.1.1 has no binary wheel for Python 3.13") {
		t.Errorf("--executor host: err %v, last line %q; want the missing wheel named", r.err, lines[len(lines)-1])
	}
	if _, err := os.Stat(hostOut); err == nil {
		t.Errorf("a failed build wrote %s", hostOut)
	}
}

// TestImageExecutorUnprivileged: as a normal user the in-image steps run
// in a user namespace and give the root build's digest; where user
// namespaces are not allowed, one clear error says what is needed and
// nothing is written. The "normal user" is uid 65534 inside a user
// namespace this test makes (as root), whose user.max_user_namespaces
// it sets to 0 for the second case, so the machine's own setting is
// never touched.
func TestImageExecutorUnprivileged(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: making a user namespace with a full uid map needs root")
	}
	testutil.NeedTool(t, "unshare", "apt-get install util-linux")
	setpriv := testutil.NeedTool(t, "setpriv", "apt-get install util-linux")
	base := testutil.DebianBase(t)

	// Everything uid 65534 reads or writes lives in one world-readable
	// tree: the binary, the app, a hard-linked copy of the base layout,
	// and writable cache and output directories.
	root, err := os.MkdirTemp("", "packer-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	layoutDir, tag, _ := strings.Cut(strings.TrimPrefix(base, "oci:"), ":")
	run(t, "cp", "-al", layoutDir, filepath.Join(root, "base"))
	testutil.CopyDir(t, testutil.Fixture(t, "py-flask-sdist"), filepath.Join(root, "app"))
	run(t, "cp", packerBin, filepath.Join(root, "packer"))
	run(t, "chmod", "-R", "a+rX", root)
	for _, d := range []string{"cache", "out"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(root, d), 0o777)
	}
	build := func(t *testing.T, cache, out string, forbid bool) (string, string, error) {
		script := `exec "$@"`
		if forbid {
			script = `echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"`
		}
		cmd := exec.Command("sh", "-c", script, "sh", setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups",
			filepath.Join(root, "packer"), "build", filepath.Join(root, "app"), "--executor", "image",
			"--base", "oci:"+filepath.Join(root, "base")+":"+tag, "--cache-dir", cache, "-o", "oci:"+out, "-t", "app:v1", "--sbom", "none")
		cmd.Env = append(os.Environ(), "HOME="+cache, "SOURCE_DATE_EPOCH=1700000000")
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:                 syscall.CLONE_NEWUSER,
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}},
			GidMappingsEnableSetgroups: true,
		}
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		err := cmd.Run()
		return strings.TrimSpace(so.String()), se.String(), err
	}

	t.Run("user namespaces allowed", func(t *testing.T) {
		digest, log, err := build(t, filepath.Join(root, "cache"), filepath.Join(root, "out", "ok"), false)
		if err != nil {
			t.Fatalf("build as uid 65534: %v\n%s", err, log)
		}
		if !strings.Contains(log, "Building wheel for markupsafe") {
			t.Errorf("pip did not build markupsafe inside the image:\n%s", log)
		}
		rootOut := filepath.Join(t.TempDir(), "root")
		want := mustPacker(t, []string{"SOURCE_DATE_EPOCH=1700000000"}, "build", filepath.Join(root, "app"), "--executor", "image", "--base", base,
			"--cache-dir", t.TempDir(), "-o", "oci:"+rootOut, "-t", "app:v1", "--sbom", "none")
		if digest != want {
			t.Errorf("uid 65534 built %s, root %s: want the same image", digest, want)
		}
	})
	t.Run("user namespaces not allowed", func(t *testing.T) {
		out := filepath.Join(root, "out", "refused")
		cache := filepath.Join(root, "out", "refused-cache")
		_, log, err := build(t, cache, out, true)
		lines := strings.Split(strings.TrimSpace(log), "\n")
		last := lines[len(lines)-1]
		if err == nil || !strings.Contains(last, "needs root or unprivileged user namespaces") || !strings.Contains(last, "--executor host") {
			t.Fatalf("err %v, last line %q; want the user namespace error\n%s", err, last, log)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("the refused build wrote %s", out)
		}
		if _, err := os.Stat(filepath.Join(cache, "rootfs")); err == nil {
			t.Errorf("the refused build unpacked the base into %s", cache)
		}
	})
}

// TestSystemPackages: psycopg2 (no Linux wheels) builds against libpq:
// packer adds its system packages by default, installs them inside the
// image with apt, and ships only the run ones (libpq5) in a layer of
// their own; the compiler and headers are absent from the image. The app
// answers under runc with libpq's version. A one-file rebuild installs
// nothing, and a second build from an empty cache gives the same digest.
func TestSystemPackages(t *testing.T) {
	t.Parallel()
	testutil.NeedTool(t, "unshare", "apt-get install util-linux")
	base := testutil.DebianBase(t)
	dir := testutil.CopyFixture(t, "py-flask-psycopg2")
	env := cacheEnv(t)

	plan := mustPacker(t, env, "plan", dir)
	if !strings.Contains(plan, "system:      build gcc libpq-dev python3-dev; run libpq5") {
		t.Errorf("packer plan does not list the system packages:\n%s", plan)
	}
	build := func(env []string) (string, string, string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "layout")
		r := packer(t, env, "build", dir, "--base", base, "-o", "oci:"+out, "-t", "app:v1")
		if r.err != nil {
			t.Fatalf("build: %v\n%s", r.err, r.stderr)
		}
		return out, strings.TrimSpace(r.stdout), r.stderr
	}
	out, digest, log := build(env)
	if !strings.Contains(log, "system packages libpq5: installing with apt inside the image") || !strings.Contains(log, "Building wheel for psycopg2") {
		t.Errorf("the log does not show apt and the psycopg2 build:\n%s", log)
	}
	c := runLayout(t, out, "v1")
	status, body, _ := c.get("/")
	if status != http.StatusOK || !strings.Contains(body, "hello from flask on psycopg2 2.9.10") || !strings.Contains(body, `"libpq":17`) && !strings.Contains(body, `"libpq": 17`) {
		t.Fatalf("GET / = %d %q; log:\n%s", status, body, c.log())
	}
	for _, p := range []string{"usr/lib/x86_64-linux-gnu/libpq.so.5", "var/lib/dpkg/info/libpq5:amd64.list"} {
		if !c.exists(p) {
			t.Errorf("run package file /%s is missing from the image", p)
		}
	}
	for _, p := range []string{"usr/include/postgresql/libpq-fe.h", "usr/bin/gcc"} {
		if c.exists(p) {
			t.Errorf("/%s is in the image: build packages must not be", p)
		}
	}
	c.stop()
	names := layerNames(t, layoutImage(t, out), "packages")
	if !slices.Contains(names, "usr/lib/x86_64-linux-gnu/libpq.so.5") {
		t.Errorf("the packages layer does not hold libpq: %v", names)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "var/lib/apt/lists/") || strings.HasPrefix(n, "var/log/") || strings.HasPrefix(n, "var/cache/apt/") || strings.HasPrefix(n, "usr/include/") || strings.Contains(n, ".wh.") {
			t.Errorf("the packages layer holds %s (apt's lists, caches and logs, build packages and whiteouts must not be there)", n)
		}
	}

	app := filepath.Join(dir, "app.py")
	os.WriteFile(app, []byte(strings.Replace(readFile(t, app), "hello from", "hello again from", 1)), 0o644)
	_, _, log = build(env)
	if strings.Contains(log, "installing with apt") || !strings.Contains(log, "step deps (linux/amd64): inputs unchanged, skipped") {
		t.Errorf("a source change reinstalled system packages or reran pip:\n%s", log)
	}
	os.WriteFile(app, []byte(strings.Replace(readFile(t, app), "hello again from", "hello from", 1)), 0o644)
	if _, again, _ := build(cacheEnv(t)); again != digest {
		t.Errorf("a build from an empty cache gave %s, the first %s: want the same digest", again, digest)
	}
}

// layerNames lists the entries of the packer layer called name.
func layerNames(t *testing.T, img v1.Image, name string) []string {
	t.Helper()
	h, err := v1.NewHash(layerByComment(t, img, name))
	if err != nil {
		t.Fatalf("no layer %s: %v", name, err)
	}
	l, err := img.LayerByDigest(h)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []string
	tr := tar.NewReader(rc)
	for {
		hd, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSuffix(hd.Name, "/"))
	}
}

// TestNativeAddonOnOtherNodeMajor: on a base with Node.js 22 (this
// machine has another major), the addon's install script runs inside the
// image: node-gyp compiles it with the image's Node.js and headers, with
// make and g++ installed as build-only system packages; the image loads
// it under runc and ships no compiler.
func TestNativeAddonOnOtherNodeMajor(t *testing.T) {
	t.Parallel()
	testutil.NeedTool(t, "npm", "install Node.js")
	testutil.NeedTool(t, "unshare", "apt-get install util-linux")
	hostNode := strings.TrimSpace(run(t, "node", "--version"))
	if strings.HasPrefix(hostNode, "v22.") {
		t.Skip("SKIP: this machine runs Node.js 22, the base's: the steps would run here")
	}
	base := testutil.NodeBase(t)
	dir := nodeFixture(t, "node-native-addon", []string{"npm", "pack", "./addon"}, []string{"npm", "install", "--package-lock-only", "--no-audit", "--no-fund"})
	out := filepath.Join(t.TempDir(), "layout")
	r := packer(t, nodeEnv(t), "build", dir, "--base", base, "--system-build", "make,g++", "-o", "oci:"+out, "-t", "app:v1")
	if r.err != nil {
		t.Fatalf("build: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stderr, "steps (linux/amd64) run inside the image: ") || !strings.Contains(r.stderr, "the image Node.js "+testutil.OtherNodeVersion) {
		t.Errorf("the log does not say the steps run inside the image with Node.js %s:\n%s", testutil.OtherNodeVersion, r.stderr)
	}
	// node-gyp records what it built against: Node.js 22's ABI (127,
	// not 20's 115) and the image's own headers.
	gypi := layerFiles(t, layoutImage(t, out))["app/node_modules/hello-addon/build/config.gypi"]
	if !strings.Contains(gypi, `"node_module_version": 127`) || !strings.Contains(gypi, `"nodedir": "/usr/local"`) {
		t.Errorf("the addon was not compiled for the image's Node.js %s with its headers; config.gypi:\n%.2000s", testutil.OtherNodeVersion, gypi)
	}
	c := runLayout(t, out, "v1")
	if status, body, _ := c.get("/"); status != http.StatusOK || !strings.Contains(body, "hello from a native addon") {
		t.Fatalf("GET / = %d %q; log:\n%s", status, body, c.log())
	}
	if c.exists("usr/bin/g++") || c.exists("usr/bin/make") {
		t.Errorf("the build-only packages make and g++ are in the image")
	}
}
