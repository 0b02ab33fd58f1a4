package e2e

import (
	"bytes"
	"debug/elf"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/packer-build/packer/internal/testutil"
)

// hostPython returns the machine's python3 executable, resolved outside
// any project directory (a fixture's .python-version would make pyenv's
// shim look for an interpreter the machine may lack).
func hostPython(t *testing.T) string {
	t.Helper()
	testutil.NeedTool(t, "python3", "install Python 3")
	cmd := exec.Command("python3", "-c", "import sys; print(sys.executable)")
	cmd.Dir = os.TempDir()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// lockFixture makes the lockfile a fixture's tool writes (uv.lock,
// Pipfile.lock) in the copy: committed lockfiles of these tools would
// carry the package index's address.
func lockFixture(t *testing.T, dir string) {
	t.Helper()
	py := hostPython(t)
	var cmd *exec.Cmd
	switch {
	case fileExists(filepath.Join(dir, "Pipfile")):
		cmd = exec.Command(py, "-m", "pipenv", "lock")
	case strings.Contains(readFile(t, filepath.Join(dir, "pyproject.toml")), "dependency-groups"):
		cmd = exec.Command(py, "-m", "uv", "lock")
	default:
		return
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PIPENV_VENV_IN_PROJECT=0", "PIPENV_IGNORE_VIRTUALENVS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(out), "No module named") {
			if testutil.InCI() {
				t.Fatalf("%v: %s (scripts/test-deps.sh installs uv and pipenv)", cmd.Args, out)
			}
			t.Skipf("SKIP: %s is not installed for %s (python3 -m pip install uv pipenv)", cmd.Args[2], py)
		}
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func readFile(t *testing.T, p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func TestPythonFixtures(t *testing.T) {
	t.Parallel()
	hostMinor := strings.TrimSpace(run(t, hostPython(t), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"))
	base := testutil.DebianBase(t)
	for _, tc := range []struct {
		fixture, body string
		absent        []string
		// pinned: a .python-version names 3.13, which this machine's
		// pyenv has, so the steps run here; without one they run inside
		// the image when this machine's python3 is another version.
		pinned bool
	}{
		{"py-flask", "hello from flask", nil, true},
		{"py-flask-main", "hello from a flask app that runs itself", []string{"opt/python/packages/gunicorn"}, false},
		{"py-flask-sdist", "hello from flask on markupsafe 2.1.1", nil, false},
		{"py-uv-workspace", "hello from a uv workspace", []string{"opt/python/packages/pytest", "opt/python/packages/shop_core"}, true},
		{"py-fastapi-uv", "hello from fastapi", []string{"opt/python/packages/pytest", "opt/python/packages/_pytest"}, true},
		{"py-django-pipenv", "hello from django", []string{"opt/python/packages/pytest"}, false}, // + collected static files, below
		{"py-django-procfile", "hello from django via its Procfile", nil, false},                 // its page needs the static manifest
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			t.Parallel()
			dir := testutil.CopyFixture(t, tc.fixture)
			lockFixture(t, dir)
			out := filepath.Join(t.TempDir(), "layout")
			r := packer(t, cacheEnv(t), "build", dir, "--base", base, "-o", "oci:"+out, "-t", "app:v1")
			if r.err != nil {
				t.Fatalf("build: %v\n%s", r.err, r.stderr)
			}
			where := "run on this machine: this machine's Python"
			if !tc.pinned && hostMinor != "3.13" {
				where = "run inside the image: this machine has Python " + hostMinor
			}
			if !strings.Contains(r.stderr, "steps (linux/amd64) "+where) {
				t.Errorf("the log does not say the steps %s:\n%s", where, r.stderr)
			}
			c := runLayout(t, out, "v1")
			status, body, _ := c.get("/")
			if status != http.StatusOK || !strings.Contains(body, tc.body) || !strings.Contains(body, `"uid": 65532`) && !strings.Contains(body, `"uid":65532`) {
				t.Fatalf("GET / = %d %q; log:\n%s", status, body, c.log())
			}
			if uid := c.uid(); uid != "65532" {
				t.Errorf("process uid %s", uid)
			}
			if strings.HasPrefix(tc.fixture, "py-django-") && !c.exists("app/staticfiles/app.css") {
				t.Errorf("collectstatic did not run at build time: /app/staticfiles/app.css is missing")
			}
			for _, p := range append(tc.absent, "app/.venv", "opt/python/packages/bin") {
				if c.exists(p) {
					t.Errorf("/%s is in the image", p)
				}
			}
			if d := c.stop(); d.Seconds() > 2 {
				t.Errorf("took %s to stop on SIGTERM", d)
			}
		})
	}
}

// TestPythonPlatformWheels: --platform linux/amd64,linux/arm64 installs
// each platform's compiled wheels (pydantic-core's .so).
func TestPythonPlatformWheels(t *testing.T) {
	hostPython(t)
	dir := testutil.CopyFixture(t, "py-fastapi-uv")
	lockFixture(t, dir)
	out := filepath.Join(t.TempDir(), "layout")
	mustPacker(t, cacheEnv(t), "build", dir, "--base", "scratch", "--platform", "linux/amd64,linux/arm64", "-o", "oci:"+out, "-t", "app:v1")
	idx, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	outer, _ := idx.IndexManifest()
	inner, err := idx.ImageIndex(outer.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := inner.IndexManifest()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, d := range im.Manifests {
		img, _ := inner.Image(d.Digest)
		so := findSO(t, img, "pydantic_core/_pydantic_core.cpython-313-")
		if so == nil {
			t.Fatalf("%s: no pydantic-core .so for cpython 3.13", d.Platform)
		}
		f, err := elf.NewFile(bytes.NewReader(so))
		if err != nil || f.Machine != want[d.Platform.Architecture] {
			t.Errorf("%s: .so machine %v, err %v", d.Platform, f.Machine, err)
		}
	}
}

func findSO(t *testing.T, img v1.Image, prefix string) []byte {
	t.Helper()
	for name, f := range testutil.ImageFiles(t, img) {
		if strings.Contains(name, prefix) && strings.HasSuffix(name, ".so") {
			return f.Data
		}
	}
	return nil
}

func TestPythonDependencyCache(t *testing.T) {
	hostPython(t)
	dir := testutil.CopyFixture(t, "py-flask")
	env := cacheEnv(t)
	build := func() (v1.Image, string) {
		out := filepath.Join(t.TempDir(), "layout")
		r := packer(t, env, "build", dir, "--base", "scratch", "-o", "oci:"+out, "-t", "app:v1")
		if r.err != nil {
			t.Fatalf("build: %v\n%s", r.err, r.stderr)
		}
		return layoutImage(t, out), r.stderr
	}
	img1, _ := build()
	app := filepath.Join(dir, "app.py")
	os.WriteFile(app, []byte(strings.Replace(readFile(t, app), "hello from flask", "hello again", 1)), 0o644)
	img2, log2 := build()
	if !strings.Contains(log2, "inputs unchanged, skipped") || strings.Contains(log2, "Successfully installed") {
		t.Errorf("a source change ran pip:\n%s", log2)
	}
	if layerByComment(t, img1, "deps") != layerByComment(t, img2, "deps") {
		t.Errorf("deps layer changed after a source-only change")
	}
	req := filepath.Join(dir, "requirements.txt")
	os.WriteFile(req, []byte(strings.Replace(readFile(t, req), "click==8.1.8", "click==8.1.7", 1)), 0o644)
	img3, _ := build()
	if layerByComment(t, img1, "deps") == layerByComment(t, img3, "deps") {
		t.Errorf("deps layer unchanged after a requirements change")
	}
}

func TestPythonBadInput(t *testing.T) {
	hostPython(t)
	for _, tc := range []struct {
		description string
		mutate      func(dir string)
		want        string
	}{
		{"unparseable pyproject.toml", func(dir string) {
			os.WriteFile(filepath.Join(dir, "pyproject.toml"), []byte("[project]\nname = \"x\"\ndependencies = [\n"), 0o644)
		}, "pyproject.toml:"},
		{"hash mismatch", func(dir string) {
			os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte("blinker==1.9.0 --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\n"), 0o644)
		}, "the download of blinker does not match the lockfile's hash"},
		{"no wheel for the target", func(dir string) {
			os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte("netifaces==0.11.0\n"), 0o644)
		}, "netifaces==0.11.0 has no binary wheel for Python 3.13 on linux/arm64"},
		{"no way to start", func(dir string) {
			os.Rename(filepath.Join(dir, "app.py"), filepath.Join(dir, "web.py"))
		}, "no way to start the app"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			dir := testutil.CopyFixture(t, "py-flask")
			tc.mutate(dir)
			out := filepath.Join(t.TempDir(), "layout")
			// arm64: another machine than this one, so only binary wheels
			// can be used (on a matching machine sdists are built).
			r := packer(t, cacheEnv(t), "build", dir, "--base", "scratch", "--platform", "linux/arm64", "-o", "oci:"+out)
			if r.err == nil {
				t.Fatalf("build succeeded")
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "packer: error: ") || !strings.Contains(last, tc.want) {
				t.Errorf("last line %q, want %q", last, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("layout written")
			}
		})
	}
}

// TestPythonLockfileCache: with a lockfile turned into generated
// requirements, a source change still does not run pip.
func TestPythonLockfileCache(t *testing.T) {
	hostPython(t)
	dir := testutil.CopyFixture(t, "py-fastapi-uv")
	lockFixture(t, dir)
	env := cacheEnv(t)
	mustPacker(t, env, "build", dir, "--base", "scratch", "-o", "oci:"+filepath.Join(t.TempDir(), "a"), "-t", "app:v1")
	main := filepath.Join(dir, "main.py")
	os.WriteFile(main, []byte(strings.Replace(readFile(t, main), "hello from fastapi", "hello again", 1)), 0o644)
	r := packer(t, env, "build", dir, "--base", "scratch", "-o", "oci:"+filepath.Join(t.TempDir(), "b"), "-t", "app:v1")
	if r.err != nil || !strings.Contains(r.stderr, "inputs unchanged, skipped") {
		t.Errorf("source change with uv.lock: err %v, pip ran:\n%s", r.err, r.stderr)
	}
}

// TestDjangoCollectstaticAfterCachedDeps: when only a static file
// changes, pip does not run, and collectstatic runs on the cached packages
// put back into the staging copy.
func TestDjangoCollectstaticAfterCachedDeps(t *testing.T) {
	hostPython(t)
	dir := testutil.CopyFixture(t, "py-django-pipenv")
	lockFixture(t, dir)
	env := cacheEnv(t)
	mustPacker(t, env, "build", dir, "--base", "scratch", "-o", "oci:"+filepath.Join(t.TempDir(), "a"), "-t", "app:v1")
	os.WriteFile(filepath.Join(dir, "mysite", "static", "app.css"), []byte("body { color: #c00; }\n"), 0o644)
	out := filepath.Join(t.TempDir(), "b")
	r := packer(t, env, "build", dir, "--base", "scratch", "-o", "oci:"+out, "-t", "app:v1")
	if r.err != nil {
		t.Fatalf("rebuild: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stderr, "step deps (linux/amd64): inputs unchanged, skipped") || !strings.Contains(r.stderr, "put its cached output back") {
		t.Errorf("rebuild log:\n%s", r.stderr)
	}
	if css := layerFiles(t, layoutImage(t, out))["app/staticfiles/app.css"]; !strings.Contains(css, "#c00") {
		t.Errorf("collected app.css = %q, want the changed file", css)
	}
}
