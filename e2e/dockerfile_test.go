package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packer-build/packer/internal/testutil"
)

// buildah runs Debian's buildah (1.28 here) the way it works on these
// machines: chroot isolation, its own storage under dir.
type buildah struct {
	t         *testing.T
	bin, root string
}

func newBuildah(t *testing.T) *buildah {
	t.Helper()
	bin := testutil.NeedTool(t, "buildah", "apt-get install buildah")
	testutil.NeedTool(t, "skopeo", "apt-get install skopeo")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: buildah's chroot isolation needs root here; this end-to-end check did not run")
	}
	// Not t.TempDir: the storage may hold read-only layer trees; removed
	// through buildah itself, then best effort.
	root, err := os.MkdirTemp("", "packer-e2e-buildah-")
	if err != nil {
		t.Fatal(err)
	}
	b := &buildah{t: t, bin: bin, root: root}
	t.Cleanup(func() {
		exec.Command(bin, b.storage("rmi", "--all", "--force")...).Run()
		os.RemoveAll(root)
	})
	return b
}

func (b *buildah) driver() string { return "overlay" }

func (b *buildah) storage(args ...string) []string {
	return append([]string{"--root", filepath.Join(b.root, "root"), "--runroot", filepath.Join(b.root, "run"), "--storage-driver", b.driver()}, args...)
}

// load copies an "oci:DIR:TAG" test base into the storage as name.
func (b *buildah) load(ref, name string) {
	b.t.Helper()
	dest := "containers-storage:[" + b.driver() + "@" + filepath.Join(b.root, "root") + "+" + filepath.Join(b.root, "run") + "]" + name
	run(b.t, "skopeo", "copy", "-q", ref, dest)
}

// TestDockerfileBuildsWithBuildah: the Dockerfile `packer dockerfile`
// writes builds with another engine (buildah, from the project's
// directory as context) for a Go server, an npm server and a Python app,
// and each image answers 200 under runc, as uid 65532; a secret-looking
// file in the project stays out (the .dockerignore written beside it).
func TestDockerfileBuildsWithBuildah(t *testing.T) {
	bh := newBuildah(t)
	bh.load(testutil.DebianBase(t), "localhost/packer-test/debian:trixie")
	bh.load(testutil.NodeBase(t), "localhost/packer-test/node:22")
	bh.load(testutil.GoBuilderBase(t), "localhost/packer-test/golang:1")
	ca := os.Getenv("SSL_CERT_FILE")
	if ca == "" {
		ca = "/etc/ssl/certs/ca-certificates.crt"
	}
	for _, tc := range []struct {
		fixture, path, want string
		args                []string
	}{
		{"go-server", "/", "hello from packer", []string{"--build-arg", "BUILDER=localhost/packer-test/golang:1"}},
		{"node-express", "/", "hello from express", []string{"--build-arg", "BASE=localhost/packer-test/node:22"}},
		{"py-flask", "/", "hello from flask", []string{"--build-arg", "BASE=localhost/packer-test/debian:trixie"}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			dir := testutil.CopyFixture(t, tc.fixture)
			os.WriteFile(filepath.Join(dir, ".env"), []byte("API_KEY=not-for-the-image\n"), 0o644)
			res := packer(t, nil, "dockerfile", dir, "--output", dir)
			if res.err != nil {
				t.Fatalf("packer dockerfile: %v\n%s", res.err, res.stderr)
			}
			df, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			// The project's own .dockerignore (express has one) stays; the
			// Dockerfile's is then Dockerfile.dockerignore.
			ignoreFile := filepath.Join(dir, ".dockerignore")
			if _, err := os.Stat(filepath.Join(dir, "Dockerfile.dockerignore")); err == nil {
				ignoreFile = filepath.Join(dir, "Dockerfile.dockerignore")
			}
			ignore, _ := os.ReadFile(ignoreFile)
			if !strings.Contains(string(ignore), "**/.env") || !strings.Contains(string(ignore), "Made by `packer dockerfile`") {
				t.Errorf("%s does not leave out .env:\n%s", ignoreFile, ignore)
			}
			// Same Dockerfile as printed.
			if printed := mustPacker(t, nil, "dockerfile", dir); printed != strings.TrimSpace(string(df)) {
				t.Errorf("the Dockerfile written differs from the one printed")
			}
			args := bh.storage("build", "--isolation", "chroot", "--pull=never", "--layers",
				"--volume", ca+":/etc/packer-ca.crt:ro",
				"--build-arg", "SSL_CERT_FILE=/etc/packer-ca.crt", "--build-arg", "NODE_EXTRA_CA_CERTS=/etc/packer-ca.crt", "--build-arg", "PIP_CERT=/etc/packer-ca.crt",
				"--ignorefile", ignoreFile, "-t", "localhost/app:"+tc.fixture)
			args = append(append(args, tc.args...), dir)
			cmd := exec.Command(bh.bin, args...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("buildah build: %v\n%s\nDockerfile:\n%s", err, out, df)
			}
			layoutDir := filepath.Join(t.TempDir(), "layout")
			run(t, bh.bin, bh.storage("push", "-q", "localhost/app:"+tc.fixture, "oci:"+layoutDir+":app")...)
			c := runLayout(t, layoutDir, "app")
			code, body, _ := c.get(tc.path)
			if code != 200 || !strings.Contains(body, tc.want) {
				t.Errorf("GET %s = %d %q, want 200 with %q; log:\n%s", tc.path, code, body, tc.want, c.log())
			}
			if uid := c.uid(); uid != "65532" {
				t.Errorf("the app runs as uid %s, want 65532", uid)
			}
			for _, p := range []string{"/app/.env", "/packer"} {
				if c.exists(p) {
					t.Errorf("%s is in the image", p)
				}
			}
		})
	}
}

// TestScaleOutBadInput: packer dockerfile never replaces a project's own
// Dockerfile or .dockerignore, and --builder buildkit without a daemon,
// or with a base only this machine has, fails at once naming what to do;
// nothing is written.
func TestScaleOutBadInput(t *testing.T) {
	t.Parallel()
	dir := testutil.CopyFixture(t, "node-express") // it has a .dockerignore of its own
	userIgnore, _ := os.ReadFile(filepath.Join(dir, ".dockerignore"))
	mine := []byte("FROM scratch\n# the project's own\n")
	os.WriteFile(filepath.Join(dir, "Dockerfile"), mine, 0o644)
	res := packer(t, nil, "dockerfile", dir, "--output", dir)
	if res.err == nil || !strings.Contains(res.stderr, "exists and packer did not write it") {
		t.Errorf("a project's Dockerfile was replaced or the error is unclear: %v\n%s", res.err, res.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Dockerfile")); string(b) != string(mine) {
		t.Errorf("the project's Dockerfile changed")
	}
	os.Remove(filepath.Join(dir, "Dockerfile"))
	res = packer(t, nil, "dockerfile", dir, "--output", dir)
	if res.err != nil {
		t.Fatalf("%v\n%s", res.err, res.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".dockerignore")); string(b) != string(userIgnore) {
		t.Errorf("the project's .dockerignore changed")
	}
	ours, _ := os.ReadFile(filepath.Join(dir, "Dockerfile.dockerignore"))
	if !strings.Contains(string(ours), strings.TrimSpace(string(userIgnore))) || !strings.Contains(res.stderr, "--ignorefile") {
		t.Errorf("Dockerfile.dockerignore lacks the project's patterns, or the log does not say how to use it:\n%s\n%s", ours, res.stderr)
	}
	// Written again: ours are replaced, the project's still not.
	if res := packer(t, nil, "dockerfile", dir, "--output", dir); res.err != nil {
		t.Errorf("a second packer dockerfile --output failed: %v\n%s", res.err, res.stderr)
	}
	if res := packer(t, nil, "dockerfile", dir, "--secret", "nope"); res.err == nil || !strings.Contains(res.stderr, "id=NAME,env=VAR") {
		t.Errorf("a malformed --secret: %v\n%s", res.err, res.stderr)
	}

	out := filepath.Join(t.TempDir(), "out")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--builder", "buildkit"}, "--builder buildkit needs a BuildKit daemon"},
		{[]string{"--builder", "buildkit", "--buildkit-addr", "unix://" + filepath.Join(t.TempDir(), "none.sock"), "--base", "127.0.0.1:5/x:y"}, "cause: dial unix"},
		{[]string{"--builder", "buildkit", "--buildkit-addr", "tcp://127.0.0.1:1", "--base", "oci:" + t.TempDir()}, "a BuildKit daemon cannot read"},
		{[]string{"--builder", "docker"}, `--builder "docker": use packer or buildkit`},
	} {
		res := packer(t, []string{"BUILDKIT_HOST="}, append([]string{"build", dir, "-o", "oci:" + out}, tc.args...)...)
		if res.err == nil || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("packer build %s: %v, want an error with %q:\n%s", strings.Join(tc.args, " "), res.err, tc.want, res.stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("packer build %s wrote %s", strings.Join(tc.args, " "), out)
		}
	}
}
