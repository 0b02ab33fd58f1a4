package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/packer-build/packer/internal/testutil"
)

func cacheEnv(t *testing.T) []string {
	// A private packer cache; Go's own build cache stays the machine's
	// (it too lives under XDG_CACHE_HOME by default).
	return []string{"XDG_CACHE_HOME=" + t.TempDir(), "GOCACHE=" + goCache, "SOURCE_DATE_EPOCH=1700000000"}
}

// TestPushToRegistryProcess pushes to a real registry server, reads the
// image with skopeo and pulls it back.
func TestPushToRegistryProcess(t *testing.T) {
	host := startRegistry(t, "")
	skopeo := testutil.NeedTool(t, "skopeo", "apt-get install skopeo")
	dir := testutil.CopyFixture(t, "go-server")
	ref := host + "/team/hello:v1"
	out := mustPacker(t, cacheEnv(t), "build", "--push", "-t", ref, "-t", host+"/team/hello:latest", dir)
	if !strings.HasPrefix(out, host+"/team/hello@sha256:") {
		t.Fatalf("stdout = %q, want the pushed digest reference", out)
	}
	digest := strings.TrimPrefix(out, host+"/team/hello@")

	var info struct {
		Digest       string
		Architecture string
		Os           string
		Labels       map[string]string
	}
	raw := run(t, skopeo, "inspect", "--tls-verify=false", "docker://"+ref)
	if err := json.Unmarshal([]byte(raw), &info); err != nil {
		t.Fatalf("skopeo inspect output: %v\n%s", err, raw)
	}
	if info.Digest != digest || info.Os != "linux" || info.Architecture == "" {
		t.Errorf("skopeo inspect = %+v, want digest %s", info, digest)
	}

	r, _ := name.ParseReference(host+"/team/hello:latest", name.Insecure)
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pulling back: %v", err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image() = %v", err)
	}
	if d, _ := img.Digest(); d.String() != digest {
		t.Errorf("latest → %s, want %s", d, digest)
	}

	t.Run("multi-platform index", func(t *testing.T) {
		ref := host + "/team/multi:v1"
		out := mustPacker(t, cacheEnv(t), "build", "--push", "--platform", "linux/amd64,linux/arm64", "-t", ref, dir)
		raw := run(t, skopeo, "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
		var idx v1.IndexManifest
		if err := json.Unmarshal([]byte(raw), &idx); err != nil {
			t.Fatal(err)
		}
		if len(idx.Manifests) != 2 || idx.MediaType != "application/vnd.oci.image.index.v1+json" {
			t.Errorf("pushed %s: %s", out, raw)
		}
	})
}

// TestLayoutRunsUnderRunc builds to an OCI layout, reads it with skopeo,
// unpacks it with umoci and runs it with runc: GET / answers 200 from a
// process running as uid 65532.
func TestLayoutRunsUnderRunc(t *testing.T) {
	skopeo := testutil.NeedTool(t, "skopeo", "apt-get install skopeo")
	dir := testutil.CopyFixture(t, "go-server")
	out := filepath.Join(t.TempDir(), "layout")
	digest := mustPacker(t, cacheEnv(t), "build", "-o", "oci:"+out, "-t", "hello:v1", dir)

	var info struct{ Digest string }
	json.Unmarshal([]byte(run(t, skopeo, "inspect", "oci:"+out+":v1")), &info)
	if info.Digest != digest {
		t.Errorf("skopeo sees %s in the layout, packer printed %s", info.Digest, digest)
	}

	c := runLayout(t, out, "v1")
	status, body, _ := c.get("/")
	if status != http.StatusOK {
		t.Fatalf("GET / = %d %q; container log:\n%s", status, body, c.log())
	}
	if !strings.Contains(body, "hello from packer (uid 65532)") {
		t.Errorf("body = %q, want the app to report uid 65532", body)
	}
	// The kernel's view of the process, not the app's word for it.
	if uid := c.uid(); uid != "65532" {
		t.Errorf("process uid %s, want 65532", uid)
	}
	if d := c.stop(); d > 2*time.Second {
		t.Errorf("container took %s to stop on SIGTERM", d)
	}
}

// TestTarballOutput writes a docker-archive and reads it with skopeo and
// go-containerregistry's tarball reader (no docker daemon here).
func TestTarballOutput(t *testing.T) {
	skopeo := testutil.NeedTool(t, "skopeo", "apt-get install skopeo")
	dir := testutil.CopyFixture(t, "go-server")
	file := filepath.Join(t.TempDir(), "hello.tar")
	mustPacker(t, cacheEnv(t), "build", "-o", "tar:"+file, "-t", "hello:v1", dir)
	var info struct {
		RepoTags []string
		Layers   []string
	}
	json.Unmarshal([]byte(run(t, skopeo, "inspect", "docker-archive:"+file)), &info)
	if len(info.Layers) != 3 {
		t.Errorf("skopeo inspect docker-archive: %+v, want 3 layers", info)
	}
	tag, _ := name.NewTag("hello:v1")
	img, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatalf("tarball.ImageFromPath: %v", err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image() = %v", err)
	}
}

// TestDefaultOutputAndPlan covers the README's main job: `packer build DIR`
// with no output flags writes DIR/.packer/oci and prints the digest, and
// building twice gives the same digest, with the step skipped.
func TestDefaultOutputAndPlan(t *testing.T) {
	dir := testutil.CopyFixture(t, "go-server")
	env := cacheEnv(t)
	d1 := mustPacker(t, env, "build", dir)
	if !strings.HasPrefix(d1, "sha256:") || strings.Contains(d1, "\n") {
		t.Fatalf("stdout = %q, want one digest", d1)
	}
	if _, err := os.Stat(filepath.Join(dir, ".packer", "oci", "index.json")); err != nil {
		t.Fatalf("default OCI layout missing: %v", err)
	}
	r := packer(t, env, "build", dir)
	if r.err != nil || strings.TrimSpace(r.stdout) != d1 {
		t.Fatalf("rebuild = %q, %v", r.stdout, r.err)
	}
	if !strings.Contains(r.stderr, "inputs unchanged, skipped") {
		t.Errorf("rebuild log does not say the step was skipped:\n%s", r.stderr)
	}
	q := packer(t, env, "build", "-q", dir)
	if q.stderr != "" {
		t.Errorf("-q still logged: %q", q.stderr)
	}
	planJSON := mustPacker(t, nil, "plan", "--json", dir)
	var p map[string]any
	if err := json.Unmarshal([]byte(planJSON), &p); err != nil || p["provider"] != "golang" {
		t.Errorf("plan --json = %v, %v", p, err)
	}
	if v := mustPacker(t, nil, "version"); !strings.HasPrefix(v, "packer ") {
		t.Errorf("version = %q", v)
	}
}

// TestBadInput: each mistake gives a one-line error naming cause and fix,
// a non-zero exit, and leaves no image, tag or layout behind.
func TestBadInput(t *testing.T) {
	host := startRegistry(t, "")
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "notes.txt"), []byte("no app"), 0o644)

	escaping := testutil.CopyFixture(t, "go-server")
	os.Symlink("../../../etc/passwd", filepath.Join(escaping, "templates", "leak"))

	for _, tc := range []struct {
		description string
		args        []string
		dir         string
		want        string
	}{
		{"no recognisable app", nil, empty, "no supported app found: looked for go.mod (Go)"},
		{"symlink escaping the context", nil, escaping, `symlink points outside the build context: "templates/leak"`},
		{"invalid platform", []string{"--platform", "linux/amd65"}, "", `unknown architecture "amd65"`},
		{"invalid platform syntax", []string{"--platform", "linux"}, "", "want OS/ARCH[/VARIANT]"},
		{"invalid tag", []string{"-t", "Hello World:v1"}, "", `invalid tag "Hello World:v1"`},
		{"missing base layout", []string{"--base", "oci:/nonexistent/layout"}, "", "is not an OCI layout"},
		{"missing base image", []string{"--base", host + "/nope/base:1"}, "", "not found on " + host},
		{"unreachable registry", []string{"--push", "-t", "127.0.0.1:1/x/y:z"}, "", "cannot reach registry 127.0.0.1:1"},
		{"push without tag", []string{"--push"}, "", "--push needs at least one -t"},
		{"bad output", []string{"-o", "zip:out"}, "", `invalid --output "zip:out"`},
	} {
		t.Run(tc.description, func(t *testing.T) {
			dir := tc.dir
			if dir == "" {
				dir = testutil.CopyFixture(t, "go-server")
			}
			out := filepath.Join(t.TempDir(), "layout")
			args := append([]string{"build", dir}, tc.args...)
			if !contains(tc.args, "--push") && !contains(tc.args, "-o") {
				args = append(args, "-o", "oci:"+out)
			}
			r := packer(t, cacheEnv(t), args...)
			if r.err == nil {
				t.Fatalf("packer %v succeeded, want an error", args)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "packer: error: ") || !strings.Contains(last, tc.want) {
				t.Errorf("last stderr line = %q, want an error containing %q", last, tc.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			for _, p := range []string{out, filepath.Join(dir, ".packer")} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s was left behind", p)
				}
			}
		})
	}
	// Nothing was tagged on the registry by any of the above.
	resp, err := http.Get("http://" + host + "/v2/_catalog")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "x/y") {
			t.Errorf("registry catalog after failures: %s", b)
		}
	}
}

// TestUnreadableFile runs packer as an unprivileged user (root reads any
// file) on a context with a file that user cannot read.
func TestUnreadableFile(t *testing.T) {
	asUser := os.Geteuid() == 0
	base, err := os.MkdirTemp("", "packer-e2e-unreadable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o777)
	ctx := filepath.Join(base, "app")
	run(t, "cp", "-a", testutil.CopyFixture(t, "go-server"), ctx)
	run(t, "chmod", "-R", "a+rX", ctx)
	secret := filepath.Join(ctx, "private.key")
	os.WriteFile(secret, []byte("k"), 0o600)
	cache := filepath.Join(base, "cache")
	os.Mkdir(cache, 0o777)
	os.Chmod(cache, 0o777)

	args := []string{"build", ctx, "--cache-dir", cache, "-o", "oci:" + filepath.Join(base, "out")}
	cmd := exec.Command(packerBin, args...)
	cmd.Env = append(os.Environ(), "HOME="+base, "GOCACHE="+filepath.Join(base, "gocache"), "GOPATH="+filepath.Join(base, "gopath"))
	if asUser {
		os.Chown(secret, 0, 0)
		cmd.SysProcAttr = sysProcAsNobody()
	}
	outb, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("build with an unreadable file succeeded:\n%s", outb)
	}
	if !strings.Contains(string(outb), `cannot read "private.key" in the build context: permission denied; make it readable or add it to .dockerignore`) {
		t.Errorf("output:\n%s", outb)
	}
	if _, err := os.Stat(filepath.Join(base, "out")); err == nil {
		t.Errorf("a layout was left behind")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestGoShapes builds Go projects of other shapes than a go.mod at the
// top, each answering under runc as uid 65532:
//   - a main.go with no go.mod (the go.mod lives in the staging copy only);
//   - a Procfile web: bin/NAME picking the main package named NAME, with
//     its arguments;
//   - a go.work with no go.mod at the top, resolving the other module from
//     the workspace.
func TestGoShapes(t *testing.T) {
	for _, tc := range []struct {
		fixture, body string
		check         func(t *testing.T, dir string)
	}{
		{"go-no-mod", "hello from go without a go.mod (uid 65532)", func(t *testing.T, dir string) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				t.Errorf("packer wrote a go.mod into the user's directory")
			}
		}},
		{"go-procfile", "howdy from the web process (uid 65532)", nil},
		// A gin app with its modules from the Go module proxy and HTML
		// templates shipped beside the binary.
		{"go-gin", "<h1>hello from gin</h1>", nil},
		{"go-work", "hello from the go workspace (uid 65532)", func(t *testing.T, dir string) {
			r := packer(t, cacheEnv(t), "plan", dir, "--target", "./nope")
			if r.err == nil || !strings.Contains(r.stderr, "is in none of go.work's modules; choose one of ./api, ./lib") {
				t.Errorf("plan --target ./nope: %v\n%s", r.err, r.stderr)
			}
		}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			dir := testutil.CopyFixture(t, tc.fixture)
			out := filepath.Join(t.TempDir(), "layout")
			r := packer(t, append(cacheEnv(t), "GOCACHE="+goCache), "build", dir, "-o", "oci:"+out, "-t", "app:v1")
			if r.err != nil {
				t.Fatalf("build: %v\n%s", r.err, r.stderr)
			}
			c := runLayout(t, out, "v1")
			if status, body, _ := c.get("/"); status != http.StatusOK || !strings.Contains(body, tc.body) {
				t.Fatalf("GET / = %d %q; log:\n%s", status, body, c.log())
			}
			c.stop()
			if tc.check != nil {
				tc.check(t, dir)
			}
		})
	}
}

// TestGoNestedMainPackages: when no main package is named like the module,
// the error lists every one, nested ones too (./cmd/admin/users under
// ./cmd/admin); --target builds the nested one, whose output is the
// command's own under runc.
func TestGoNestedMainPackages(t *testing.T) {
	t.Parallel()
	dir := testutil.CopyFixture(t, "go-multi-cmd")
	renamed := testutil.CopyFixture(t, "go-multi-cmd")
	os.WriteFile(filepath.Join(renamed, "go.mod"), []byte("module example.com/store\n\ngo 1.22\n"), 0o644)
	r := packer(t, cacheEnv(t), "plan", renamed)
	if want := "(./cmd/admin, ./cmd/admin/users, ./cmd/shop, ./cmd/worker): choose the main package to build with --target DIR"; r.err == nil || !strings.Contains(r.stderr, want) {
		t.Errorf("plan: %v, want an error listing %q:\n%s", r.err, want, r.stderr)
	}
	out := filepath.Join(t.TempDir(), "layout")
	r = packer(t, append(cacheEnv(t), "GOCACHE="+goCache), "build", dir, "--target", "./cmd/admin/users", "-o", "oci:"+out, "-t", "app:v1")
	if r.err != nil {
		t.Fatalf("build: %v\n%s", r.err, r.stderr)
	}
	c := runLayout(t, out, "v1")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(c.log(), "shop: admin users") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(c.log(), "shop: admin users") {
		t.Errorf("the nested command printed %q, want %q", c.log(), "shop: admin users")
	}
}

// TestResultFilesAndExitCodes: --metadata-file (buildx's keys and
// packer's) and --iidfile agree with the layout and the registry; each
// documented exit code comes from the failure it names.
func TestResultFilesAndExitCodes(t *testing.T) {
	t.Parallel()
	dir := testutil.CopyFixture(t, "go-server")
	tmp := t.TempDir()
	out, meta, iid := filepath.Join(tmp, "layout"), filepath.Join(tmp, "meta.json"), filepath.Join(tmp, "iid")
	env := append(cacheEnv(t), "GOCACHE="+goCache)
	mustPacker(t, env, "build", dir, "-o", "oci:"+out, "-t", "hello:v1", "--metadata-file", meta, "--iidfile", iid)
	img := layoutImage(t, out)
	digest, _ := img.Digest()
	cfg, _ := img.ConfigName()
	var m struct {
		Digest     string `json:"containerimage.digest"`
		Config     string `json:"containerimage.config.digest"`
		Name       string `json:"image.name"`
		Descriptor struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Size      int64  `json:"size"`
		} `json:"containerimage.descriptor"`
		Images []struct {
			Layers []struct {
				Digest string `json:"digest"`
				Reused bool   `json:"reused"`
			} `json:"layers"`
		} `json:"packer.images"`
	}
	b, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("metadata file: %v\n%s", err, b)
	}
	raw, _ := img.RawManifest()
	if m.Digest != digest.String() || m.Descriptor.Digest != digest.String() || m.Descriptor.Size != int64(len(raw)) || m.Config != cfg.String() || m.Name != "hello:v1" {
		t.Errorf("metadata %+v does not match the layout's image %s (config %s, manifest %d bytes)", m, digest, cfg, len(raw))
	}
	layers, _ := img.Layers()
	if len(m.Images) != 1 || len(m.Images[0].Layers) == 0 || len(m.Images[0].Layers) > len(layers) {
		t.Fatalf("metadata images %+v", m.Images)
	}
	own := layers[len(layers)-len(m.Images[0].Layers):]
	for i, l := range m.Images[0].Layers {
		if d, _ := own[i].Digest(); d.String() != l.Digest {
			t.Errorf("metadata layer %d is %s, the image's %s", i, l.Digest, d)
		}
	}
	if id, _ := os.ReadFile(iid); string(id) != cfg.String() {
		t.Errorf("iidfile %q, want the config digest %s", id, cfg)
	}
	// A rebuild reports its layers reused.
	mustPacker(t, env, "build", dir, "-o", "oci:"+out, "-t", "hello:v1", "--metadata-file", meta)
	b, _ = os.ReadFile(meta)
	json.Unmarshal(b, &m)
	for _, l := range m.Images[0].Layers {
		if !l.Reused {
			t.Errorf("a rebuild with nothing changed reports layer %s as new", l.Digest)
		}
	}

	reg := startRegistry(t, "")
	mustPacker(t, env, "build", dir, "-t", reg+"/hello:v1", "--push", "--sbom", "none")
	exit := func(r result) int {
		var ee *exec.ExitError
		if errors.As(r.err, &ee) {
			return ee.ExitCode()
		}
		return 0
	}
	for _, tc := range []struct {
		what string
		code int
		args []string
	}{
		{"an unknown flag", 2, []string{"build", dir, "--nope"}},
		{"a missing --metadata-file directory", 2, []string{"build", dir, "--metadata-file", filepath.Join(tmp, "no", "m.json")}},
		{"no app in the directory", 1, []string{"build", t.TempDir()}},
		{"an unreachable registry", 3, []string{"build", dir, "-t", "127.0.0.1:1/hello:v1", "--push", "--sbom", "none"}},
		{"an unsigned image", 4, []string{"verify", reg + "/hello:v1", "--key", writePublicKey(t)}},
	} {
		r := packer(t, env, tc.args...)
		if got := exit(r); got != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s", tc.what, got, tc.code, r.stderr)
		}
	}
}

// writePublicKey writes a fresh ECDSA public key (PEM) and returns its path.
func writePublicKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(k.Public())
	p := filepath.Join(t.TempDir(), "other.pub")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	return p
}

// TestCacheInsideContext: a --cache-dir inside the app (GitLab CI caches
// only paths there) is left out of the context: the rebuild, with the
// cache now full, gives the same digest.
func TestCacheInsideContext(t *testing.T) {
	t.Parallel()
	// A plan whose app layer is the whole context.
	dir, plan := bigContext(t, 0), sourcePlan(t)
	env := cacheEnv(t)
	build := func() string {
		return strings.TrimSpace(mustPacker(t, env, "build", dir, "--plan", plan, "--cache-dir", filepath.Join(dir, ".packer-cache"), "-o", "oci:"+filepath.Join(t.TempDir(), "l"), "-q"))
	}
	if first, second := build(), build(); first != second {
		t.Errorf("the rebuild gave %s, the first build %s: the cache went into the image", second, first)
	}
}

// TestBuildxOutputForms: docker buildx's --output forms each write what
// buildx would: type=oci,dest=FILE.tar an OCI archive skopeo reads,
// type=oci,dest=DIR a layout, type=docker,dest=FILE a docker-archive,
// type=registry and type=image,push=true a push; --pull is accepted.
func TestBuildxOutputForms(t *testing.T) {
	t.Parallel()
	skopeo := testutil.NeedTool(t, "skopeo", "apt-get install skopeo")
	dir := testutil.CopyFixture(t, "go-server")
	env := append(cacheEnv(t), "GOCACHE="+goCache)
	reg := startRegistry(t, "")
	tmp := t.TempDir()
	archive, layoutDir, docker := filepath.Join(tmp, "image.tar"), filepath.Join(tmp, "layout"), filepath.Join(tmp, "docker.tar")
	digest := strings.TrimSpace(mustPacker(t, env, "build", dir, "-q", "--pull", "-t", reg+"/hello:v1",
		"--output", "type=oci,dest="+archive, "--output", "type=oci,dest="+layoutDir,
		"--output", "type=docker,dest="+docker, "--output", "type=registry"))
	// stdout: the registry's digest reference.
	if !strings.Contains(digest, "@sha256:") {
		t.Fatalf("packer printed %q, want a pushed digest reference", digest)
	}
	want := digest[strings.Index(digest, "@")+1:]
	var inspect struct{ Digest string }
	out := run(t, skopeo, "inspect", "oci-archive:"+archive+":v1")
	if err := json.Unmarshal([]byte(out), &inspect); err != nil || inspect.Digest != want {
		t.Errorf("skopeo inspect oci-archive: %q (%v), want digest %s", out, err, want)
	}
	if d, _ := layoutImage(t, layoutDir).Digest(); d.String() != want {
		t.Errorf("the layout holds %s, want %s", d, want)
	}
	img, err := tarball.ImageFromPath(docker, nil)
	if err != nil {
		t.Fatalf("the docker-archive: %v", err)
	}
	if c, _ := img.ConfigName(); c.String() == "" {
		t.Errorf("the docker-archive has no config")
	}
	// type=image,push=true pushes too.
	mustPacker(t, env, "build", dir, "-q", "-t", reg+"/hello:v2", "--output", "type=image,push=true")
	if d, err := remote.Head(mustRef(t, reg+"/hello:v2")); err != nil || d.Digest.String() != want {
		t.Errorf("type=image,push=true: %v %v, want %s", d, err, want)
	}
}

// TestGoBuildSettings: packer.toml's [go] table, as ko users keep it in
// .ko.yaml: ldflags with template fields stamp the git tag into the
// binary, and cgo = true links against the C library, on a base that has
// one (the Debian test base, whose glibc is newer than this machine's);
// the image answers under runc as uid 65532 with glibc's own version. On
// the static base the plan is refused.
func TestGoBuildSettings(t *testing.T) {
	t.Parallel()
	testutil.NeedTool(t, "gcc", "apt-get install gcc")
	base := testutil.DebianBase(t)
	dir := testutil.CopyFixture(t, "go-cgo")
	gitEnv := []string{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid"}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-qm", "init"}, {"tag", "v1.4.0"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), gitEnv...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	out := filepath.Join(t.TempDir(), "layout")
	r := packer(t, append(cacheEnv(t), "GOCACHE="+goCache), "build", dir, "--base", base, "-o", "oci:"+out, "-t", "app:v1")
	if r.err != nil {
		t.Fatalf("build: %v\n%s", r.err, r.stderr)
	}
	c := runLayout(t, out, "v1")
	status, body, _ := c.get("/")
	if status != http.StatusOK || !strings.HasPrefix(body, "hello from cgo v1.4.0, glibc 2.") || !strings.Contains(body, "(uid 65532)") {
		t.Fatalf("GET / = %d %q, want the tag from ldflags and glibc's version; log:\n%s", status, body, c.log())
	}
	c.stop()
	r = packer(t, cacheEnv(t), "plan", dir, "--base", "builtin:static")
	if r.err == nil || !strings.Contains(r.stderr, "has no C library") {
		t.Errorf("cgo on the static base: %v\n%s", r.err, r.stderr)
	}
}

// TestCacheHousekeeping: packer cache ls lists the layers two builds left;
// a build with --cache-max under the cache's size removes the entries it
// did not use and keeps its own; prune --filter until= keeps recent
// entries, --keep-storage frees space, and the next build still succeeds.
func TestCacheHousekeeping(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	env := append(cacheEnv(t), "GOCACHE="+goCache)
	goDir := testutil.CopyFixture(t, "go-server")
	srcDir, plan := bigContext(t, 1<<20), sourcePlan(t)
	buildGo := func(extra ...string) result {
		r := packer(t, env, append([]string{"build", goDir, "--cache-dir", cache, "-o", "oci:" + filepath.Join(t.TempDir(), "l")}, extra...)...)
		if r.err != nil {
			t.Fatalf("build: %v\n%s", r.err, r.stderr)
		}
		return r
	}
	buildGo()
	mustPacker(t, env, "build", srcDir, "--plan", plan, "--cache-dir", cache, "-o", "oci:"+filepath.Join(t.TempDir(), "l"))
	list := func() (string, int) {
		out := mustPacker(t, env, "cache", "ls", "--cache-dir", cache)
		return out, strings.Count(out, "\nlayer ")
	}
	out, before := list()
	if before < 4 || !strings.Contains(out, "total ") {
		t.Fatalf("cache ls after two builds:\n%s", out)
	}
	// The Go build again, with a limit far under the cache's size: the
	// other build's layers go, its own stay (and were reused).
	r := buildGo("--cache-max", "1KiB")
	if !strings.Contains(r.stderr, "least recently used entries") || !strings.Contains(r.stderr, "cached") {
		t.Errorf("the limited build did not say what it removed, or rebuilt its layers:\n%s", r.stderr)
	}
	_, after := list()
	if after == 0 || after >= before {
		t.Errorf("layers before %d, after the limited build %d: want fewer, and the build's own kept", before, after)
	}
	if r := buildGo(); !strings.Contains(r.stderr, "inputs unchanged, skipped") {
		t.Errorf("the Go build's own entries did not survive the limit:\n%s", r.stderr)
	}
	mustPacker(t, env, "cache", "prune", "--cache-dir", cache, "--filter", "until=1h")
	if _, n := list(); n != after {
		t.Errorf("prune --filter until=1h removed recent entries: %d → %d", after, n)
	}
	r = packer(t, env, "cache", "prune", "--cache-dir", cache, "--keep-storage", "1")
	if r.err != nil || !strings.Contains(r.stderr, "freed") {
		t.Fatalf("prune --keep-storage: %v\n%s", r.err, r.stderr)
	}
	if _, n := list(); n != 0 {
		t.Errorf("%d layers left after prune --keep-storage 1", n)
	}
	buildGo()
}

// startPodmanService runs podman's docker-compatible API on a socket of
// its own, with storage in a temp dir (vfs; runc and cgroupfs, as podman
// runs here), and returns DOCKER_HOST and the podman arguments that reach
// the same storage.
func startPodmanService(t *testing.T) (string, []string) {
	t.Helper()
	podman := testutil.NeedTool(t, "podman", "apt-get install podman")
	dir := t.TempDir()
	args := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs", "--runtime", "runc", "--events-backend", "file"}
	sock := filepath.Join(dir, "podman.sock")
	cmd := exec.Command(podman, append(args, "system", "service", "--time", "0", "unix://"+sock)...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return "unix://" + sock, args
		}
	}
	t.Fatalf("podman system service did not start:\n%s", logs.String())
	return "", nil
}

// TestLoadIntoDaemon: --load streams the image into a local daemon's API
// (podman's docker-compatible service here, as docker load would): the
// image is listed under its tag and its ID is the config digest.
func TestLoadIntoDaemon(t *testing.T) {
	t.Parallel()
	host, podmanArgs := startPodmanService(t)
	dir := testutil.CopyFixture(t, "go-server")
	meta := filepath.Join(t.TempDir(), "meta.json")
	mustPacker(t, append(cacheEnv(t), "DOCKER_HOST="+host), "build", dir, "--load", "-t", "hello:load", "--metadata-file", meta)
	var m struct {
		Config string `json:"containerimage.config.digest"`
	}
	b, _ := os.ReadFile(meta)
	json.Unmarshal(b, &m)
	out := run(t, "podman", append(podmanArgs, "image", "inspect", "hello:load")...)
	var inspect []struct {
		ID       string `json:"Id"`
		RepoTags []string
	}
	if err := json.Unmarshal([]byte(out), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	if "sha256:"+inspect[0].ID != m.Config || !strings.Contains(strings.Join(inspect[0].RepoTags, " "), "hello:load") {
		t.Errorf("the daemon holds %s %v, want config %s tagged hello:load", inspect[0].ID, inspect[0].RepoTags, m.Config)
	}
	// A daemon that is not there: a clear error, nothing else written.
	r := packer(t, append(cacheEnv(t), "DOCKER_HOST=unix://"+filepath.Join(t.TempDir(), "none.sock")), "build", dir, "--load", "-t", "hello:load")
	if r.err == nil || !strings.Contains(r.stderr, "is it running") {
		t.Errorf("--load with no daemon: %v\n%s", r.err, r.stderr)
	}
}

// TestProgressTTY runs a build in a real terminal (tmux): --progress auto
// picks the live view, and a capture mid-build shows the running step with
// its timer and its last output line; the end shows the summary.
func TestProgressTTY(t *testing.T) {
	t.Parallel()
	tmux := testutil.NeedTool(t, "tmux", "apt-get install tmux")
	plan := writePlan(t, map[string]any{
		"provider": "custom", "base": "builtin:static",
		"steps":      []any{map[string]any{"name": "slow", "run": []string{"sh", "-c", "echo warming up; sleep 4; mkdir -p out; echo hi > out/hi"}, "output": "out"}},
		"layers":     []any{map[string]any{"name": "app", "from": "slow", "dest": "/app"}},
		"entrypoint": []string{"/app/none"}, "user": "65532:65532", "workingDir": "/app",
	})
	dir := bigContext(t, 0)
	session := fmt.Sprintf("packer-e2e-%d", time.Now().UnixNano())
	script := filepath.Join(t.TempDir(), "run.sh")
	os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\nexport XDG_CACHE_HOME=%s\n%s build %s --plan %s -o oci:%s\necho EXIT=$?\nsleep 30\n",
		t.TempDir(), packerBin, dir, plan, filepath.Join(t.TempDir(), "l"))), 0o755)
	run(t, tmux, "new-session", "-d", "-s", session, "-x", "200", "-y", "50", "env", "TERM=xterm-256color", script)
	t.Cleanup(func() { exec.Command(tmux, "kill-session", "-t", session).Run() })
	capture := func() string { return run(t, tmux, "capture-pane", "-p", "-t", session) }
	var mid string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if c := capture(); strings.Contains(c, "step linux/amd64 slow 2.") {
			mid = c
			break
		}
	}
	if !strings.Contains(mid, "│ warming up") {
		t.Fatalf("no live step timer with its output mid-build; the terminal showed:\n%s", capture())
	}
	var end string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if end = capture(); strings.Contains(end, "EXIT=") {
			break
		}
	}
	if !strings.Contains(end, "EXIT=0") || !strings.Contains(end, "packer: summary") || !strings.Contains(end, "phases   base") || !strings.Contains(end, ", build ") {
		t.Errorf("the build's end in the terminal:\n%s", end)
	}
}

// TestLayoutWithoutTag: a fresh single-platform layout holds one image in
// index.json, so skopeo inspect oci:DIR and podman pull oci:DIR need no
// tag and umoci lists it; its SBOMs stay reachable (packer sbom oci:DIR);
// a rebuild in place drops the replaced image's blobs.
func TestLayoutWithoutTag(t *testing.T) {
	t.Parallel()
	skopeo := testutil.NeedTool(t, "skopeo", "apt-get install skopeo")
	umoci := testutil.NeedTool(t, "umoci", "apt-get install umoci")
	dir := testutil.CopyFixture(t, "go-server")
	// podman names the pulled image after the path: a lowercase one.
	lower, err := os.MkdirTemp("", "packer-e2e-layout-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(lower) })
	out := filepath.Join(lower, "layout")
	env := append(cacheEnv(t), "GOCACHE="+goCache)
	digest := strings.TrimSpace(mustPacker(t, env, "build", dir, "-q", "-o", "oci:"+out, "-t", "hello:v1"))
	var inspect struct{ Digest string }
	if err := json.Unmarshal([]byte(run(t, skopeo, "inspect", "oci:"+out)), &inspect); err != nil || inspect.Digest != digest {
		t.Errorf("skopeo inspect oci:DIR (no tag): %+v %v, want %s", inspect, err, digest)
	}
	if ls := run(t, umoci, "ls", "--layout", out); strings.TrimSpace(ls) != "v1" {
		t.Errorf("umoci ls: %q, want v1", ls)
	}
	if sb := mustPacker(t, env, "sbom", "oci:"+out); !strings.Contains(sb, `"spdxVersion"`) {
		t.Errorf("packer sbom oci:DIR: %.200s", sb)
	}
	if _, err := exec.LookPath("podman"); err == nil {
		store := t.TempDir()
		args := []string{"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--runtime", "runc", "--events-backend", "file"}
		run(t, "podman", append(args, "pull", "-q", "oci:"+out)...)
	} else if testutil.InCI() {
		t.Errorf("podman is missing (scripts/test-deps.sh installs it)")
	}
	count := func() int {
		ents, _ := os.ReadDir(filepath.Join(out, "blobs", "sha256"))
		return len(ents)
	}
	before := count()
	os.WriteFile(filepath.Join(dir, "templates", "index.html"), []byte("<p>{{.Greeting}} again</p>\n"), 0o644)
	mustPacker(t, env, "build", dir, "-q", "-o", "oci:"+out, "-t", "hello:v1")
	if after := count(); after != before {
		t.Errorf("the layout rebuilt in place holds %d blobs, %d before: the replaced image's stayed", after, before)
	}
}

// TestReadmeUsage runs every command of README's Usage block, as written,
// on the bundled Go fixture: DIR is the fixture, REG (and
// registry.example) a real registry process, IMAGE an image pushed there,
// cosign.key/.pub a pair cosign made; optional [words] are given. Keyless
// signing needs an OIDC token and Fulcio: TestKeylessSigningWithFulcio
// runs it. A README command that no longer runs fails here.
func TestReadmeUsage(t *testing.T) {
	t.Parallel()
	cosign := testutil.NeedTool(t, "cosign", "scripts/tools.sh installs it with go install")
	readme, err := os.ReadFile(filepath.Join(testutil.Root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "## Usage\n\n```sh\n")
	if !ok {
		t.Fatal("README has no Usage block")
	}
	block, _, _ = strings.Cut(block, "```")
	reg := startRegistry(t, "")
	work := t.TempDir()
	dir := testutil.CopyFixture(t, "go-server")
	keys := t.TempDir()
	gen := exec.Command(cosign, "generate-key-pair")
	gen.Dir, gen.Env = keys, append(os.Environ(), "COSIGN_PASSWORD=readme")
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	env := append(cacheEnv(t), "GOCACHE="+goCache, "COSIGN_PASSWORD=readme")
	comment := regexp.MustCompile(`\s+#.*$`)
	ran := 0
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(comment.ReplaceAllString(line, ""))
		if !strings.HasPrefix(line, "packer ") {
			continue
		}
		if strings.Contains(line, "--sign-keyless") {
			continue // needs an OIDC token and Fulcio: TestKeylessSigningWithFulcio
		}
		if strings.Contains(line, "--builder buildkit") {
			continue // needs a buildkitd: TestBuildKitBuilder
		}
		cmdline := strings.NewReplacer(
			"[DIR]", dir, " DIR", " "+dir, "registry.example/team", reg+"/team", "REG", reg, "IMAGE", reg+"/hello:v1",
			"[--json]", "--json", "[--format cyclonedx]", "--format cyclonedx", "[--all]", "--all",
			"cosign.key", filepath.Join(keys, "cosign.key"), "cosign.pub", filepath.Join(keys, "cosign.pub"),
			"oci:out", "oci:"+filepath.Join(work, "out"), "tar:hello.tar", "tar:"+filepath.Join(work, "hello.tar"),
		).Replace(line)
		args := strings.Fields(strings.TrimPrefix(cmdline, "packer "))
		// As a user runs them: in the app's directory.
		cmd := exec.Command(packerBin, args...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("README: %s\nran in the app's directory: packer %s\n%v\n%s", line, strings.Join(args, " "), err, out)
		}
		ran++
	}
	if ran < 10 {
		t.Errorf("ran %d README commands; the Usage block changed shape", ran)
	}
}

// TestZstdLayers: --compression zstd writes packer's layers as zstd (the
// OCI zstd media type), a different digest from gzip's, the same one
// twice; podman (runc underneath) runs it and it answers as uid 65532.
func TestZstdLayers(t *testing.T) {
	t.Parallel()
	dir := testutil.CopyFixture(t, "go-server")
	env := append(cacheEnv(t), "GOCACHE="+goCache)
	build := func(args ...string) (string, v1.Image) {
		out := filepath.Join(t.TempDir(), "layout")
		d := strings.TrimSpace(mustPacker(t, env, append([]string{"build", dir, "-q", "-o", "oci:" + out, "-t", "app:v1"}, args...)...))
		return d, layoutImage(t, out)
	}
	zd, img := build("--compression", "zstd")
	gd, _ := build()
	if zd == gd {
		t.Errorf("zstd and gzip gave one digest %s", zd)
	}
	if again, _ := build("--compression", "zstd", "--no-cache"); again != zd {
		t.Errorf("zstd rebuilt from scratch gave %s, then %s", zd, again)
	}
	m, _ := img.Manifest()
	for _, l := range m.Layers {
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+zstd" {
			t.Errorf("layer %s is %s, want zstd", l.Digest, l.MediaType)
		}
	}
	// umoci 0.4.7 (Debian's) reads no zstd; podman does, and runs it.
	podman := testutil.NeedTool(t, "podman", "apt-get install podman")
	lower, err := os.MkdirTemp("", "packer-e2e-zstd-") // podman names it after the path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(lower) })
	out := filepath.Join(lower, "layout")
	mustPacker(t, env, "build", dir, "-q", "-o", "oci:"+out, "-t", "app:v1", "--compression", "zstd")
	store, err := os.MkdirTemp("", "packer-e2e-podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Runs after the rm -f below: podman's --rm clean-up (conmon) may
		// still be writing in the store when rm returns.
		for i := 0; i < 50 && os.RemoveAll(store) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	args := []string{"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--runtime", "runc", "--events-backend", "file"}
	id := strings.TrimSpace(run(t, podman, append(args, "pull", "-q", "oci:"+out+":v1")...))
	port := freePort(t)
	name := fmt.Sprintf("packer-e2e-zstd-%d", port)
	run(t, podman, append(args, "run", "-d", "--rm", "--network", "host", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768",
		"-e", fmt.Sprintf("PORT=%d", port), "--name", name, id)...)
	t.Cleanup(func() { exec.Command(podman, append(args, "rm", "-f", name)...).Run() })
	var body string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
	}
	if !strings.Contains(body, "hello from packer (uid 65532)") {
		t.Errorf("the zstd image under podman answered %q", body)
	}
}
