package python

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/packer-build/packer/detect"
)

func f(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

const flaskApp = "from flask import Flask\napp = Flask(__name__)\n"

func TestLockfiles(t *testing.T) {
	for _, tc := range []struct {
		description string
		fs          fstest.MapFS
		want        []string // requirement lines (first line of each), in order
		wantErr     string
	}{
		{"poetry 2 groups", fstest.MapFS{
			"pyproject.toml": f("[tool.poetry]\nname='x'\n"),
			"poetry.lock": f(`[[package]]
name = "Flask"
version = "3.1.0"
groups = ["main"]
files = [{file = "flask-3.1.0-py3-none-any.whl", hash = "sha256:aa"}, {file = "flask-3.1.0.tar.gz", hash = "sha256:bb"}]

[[package]]
name = "pytest"
version = "8.3.4"
groups = ["dev"]
files = []

[[package]]
name = "colorama"
version = "0.4.6"
groups = ["main", "dev"]
markers = "sys_platform == \"win32\""
files = [{file = "c.whl", hash = "sha256:cc"}]
`), "app.py": f(flaskApp)}, []string{"colorama==0.4.6 ; sys_platform == \"win32\" \\", "Flask==3.1.0 \\"}, ""},
		{"poetry 1 category", fstest.MapFS{"poetry.lock": f("[[package]]\nname = \"gunicorn\"\nversion = \"23.0.0\"\ncategory = \"main\"\n\n[[package]]\nname = \"black\"\nversion = \"24.1\"\ncategory = \"dev\"\n"), "app.py": f(flaskApp)}, []string{"gunicorn==23.0.0"}, ""},
		{"uv: project deps reached, dev group left out", fstest.MapFS{
			"pyproject.toml": f("[project]\nname = \"svc\"\ndependencies = [\"fastapi\"]\n"),
			"uv.lock": f(`version = 1
[[package]]
name = "svc"
version = "0.1.0"
source = { virtual = "." }
dependencies = [{ name = "fastapi" }]
[package.dev-dependencies]
dev = [{ name = "pytest" }]

[[package]]
name = "fastapi"
version = "0.115.6"
source = { registry = "https://example.invalid/simple" }
dependencies = [{ name = "starlette" }, { name = "pydantic" }]
sdist = { url = "https://example.invalid/f.tar.gz", hash = "sha256:11" }
wheels = [{ url = "https://example.invalid/f.whl", hash = "sha256:22" }]

[[package]]
name = "starlette"
version = "0.41.3"
source = { registry = "https://example.invalid/simple" }
wheels = [{ url = "https://example.invalid/s.whl", hash = "sha256:33" }]

[[package]]
name = "pydantic"
version = "2.10.4"
source = { registry = "https://example.invalid/simple" }

[[package]]
name = "pytest"
version = "8.3.4"
source = { registry = "https://example.invalid/simple" }
`), "main.py": f("from fastapi import FastAPI\napp = FastAPI()\n")}, []string{"fastapi==0.115.6 \\", "pydantic==2.10.4", "starlette==0.41.3 \\"}, ""},
		{"pdm default group", fstest.MapFS{"pdm.lock": f("[[package]]\nname = \"flask\"\nversion = \"3.1.0\"\ngroups = [\"default\"]\nfiles = [{file = \"x.whl\", hash = \"sha256:aa\"}]\n\n[[package]]\nname = \"ruff\"\nversion = \"0.8\"\ngroups = [\"lint\"]\n"), "app.py": f(flaskApp)}, []string{"flask==3.1.0 \\"}, ""},
		{"Pipfile.lock default", fstest.MapFS{"Pipfile.lock": f(`{"_meta": {}, "default": {"flask": {"version": "==3.1.0", "hashes": ["sha256:aa"]}}, "develop": {"pytest": {"version": "==8.3.4"}}}`), "app.py": f(flaskApp)}, []string{"flask==3.1.0 \\"}, ""},
		{"Pipfile.lock VCS dependency", fstest.MapFS{"Pipfile.lock": f(`{"default": {"lib": {"git": "x"}}}`)}, nil, "lib has no pinned version"},
		{"broken poetry.lock", fstest.MapFS{"poetry.lock": f("[[package]\n")}, nil, "poetry.lock:1"},
		{"pyproject deps without a lockfile", fstest.MapFS{"pyproject.toml": f("[project]\nname='x'\ndependencies=['flask']\n"), "app.py": f(flaskApp)}, nil, "there is no lockfile"},
		{"Pipfile without lock", fstest.MapFS{"Pipfile": f("[packages]\nflask='*'\n")}, nil, "run `pipenv lock`"},
		{"poetry without lock", fstest.MapFS{"pyproject.toml": f("[tool.poetry]\nname='x'\n")}, nil, "no poetry.lock"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			tc.fs["Procfile"] = f("web: python3 app.py\n") // start detection is TestStart's
			p, err := Provider{}.Plan(context.Background(), tc.fs, detect.Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Plan() error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Plan() = %v", err)
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			req := p.Steps[0].Files[".packer/requirements.txt"]
			var got []string
			for _, line := range strings.Split(req, "\n") {
				if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "    --hash") {
					got = append(got, line)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("requirements:\n%s\nwant lines %q", req, tc.want)
			}
		})
	}
}

func TestPythonVersion(t *testing.T) {
	for _, tc := range []struct {
		fs       fstest.MapFS
		requires string
		want     string
	}{
		{fstest.MapFS{".python-version": f("3.12.4\n")}, "", "3.12"},
		{fstest.MapFS{"runtime.txt": f("python-3.11.9")}, "", "3.11"},
		{fstest.MapFS{"Pipfile": f("[requires]\npython_version = \"3.10\"\n")}, "", "3.10"},
		{fstest.MapFS{}, ">=3.9", "3.13"},
		{fstest.MapFS{}, "~=3.12.0", "3.12"},
		{fstest.MapFS{}, ">=3.11,<3.13", "3.11"},
		{fstest.MapFS{}, "", "3.13"},
	} {
		if got, _ := pythonVersion(tc.fs, tc.requires); got != tc.want {
			t.Errorf("pythonVersion(%v, %q) = %s, want %s", tc.fs, tc.requires, got, tc.want)
		}
	}
}

func TestStart(t *testing.T) {
	req := func(s string) *fstest.MapFile { return f(s) }
	for _, tc := range []struct {
		description string
		fs          fstest.MapFS
		want        string
		wantErr     string
	}{
		{"flask + gunicorn", fstest.MapFS{"requirements.txt": req("flask==3\ngunicorn==23\n"), "app.py": f(flaskApp)}, "python3 -m gunicorn app:app", ""},
		{"flask factory", fstest.MapFS{"requirements.txt": req("Flask==3\ngunicorn\n"), "app/__init__.py": f("from flask import Flask\ndef create_app():\n    return Flask(__name__)\n")}, "python3 -m gunicorn app:create_app()", ""},
		{"flask without server", fstest.MapFS{"requirements.txt": req("flask==3\n"), "app.py": f(flaskApp)}, "", "add gunicorn"},
		{"fastapi", fstest.MapFS{"requirements.txt": req("fastapi==0.115\nuvicorn[standard]==0.34\n"), "main.py": f("import fastapi\napi = fastapi.FastAPI()\n")}, `sh -c exec python3 -m uvicorn main:api --host 0.0.0.0 --port "${PORT:-8080}"`, ""},
		{"django", fstest.MapFS{"requirements.txt": req("Django==5.1\ngunicorn==23\n"), "manage.py": f(`os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")`)}, "python3 -m gunicorn shop.wsgi:application", ""},
		{"django without gunicorn", fstest.MapFS{"requirements.txt": req("django\n"), "manage.py": f(`os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings')`)}, "", "Django app without gunicorn"},
		{"Procfile console script", fstest.MapFS{"requirements.txt": req("gunicorn\n"), "Procfile": f("web: gunicorn -w 2 wsgi:app\n")}, "python3 -m gunicorn -w 2 wsgi:app", ""},
		{"main.py", fstest.MapFS{"requirements.txt": req("requests\n"), "main.py": f("print(1)\n")}, "python3 main.py", ""},
		{"nothing", fstest.MapFS{"requirements.txt": req("requests\n")}, "", "no way to start the app"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			p, err := Provider{}.Plan(context.Background(), tc.fs, detect.Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Plan() error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Plan() = %v", err)
			}
			if got := strings.Join(p.Entrypoint, " "); got != tc.want {
				t.Errorf("entrypoint %q, want %q", got, tc.want)
			}
		})
	}
}

// .python-version's comment lines are not the version (uv init writes
// none, but hand-written ones carry them).
func TestPythonVersionFileComments(t *testing.T) {
	src := fstest.MapFS{".python-version": &fstest.MapFile{Data: []byte("# pinned for the 3.9 → 3.12 move\n3.12\n")}}
	v, why := pythonVersion(src, "")
	if v != "3.12" || strings.Contains(why, "#") {
		t.Errorf("pythonVersion() = %s, %q; want 3.12 without the comment", v, why)
	}
}

// uv workspace members are local source trees: not pinned from an index,
// imported from the app; their own dependencies are installed.
func TestUVWorkspaceMembers(t *testing.T) {
	lock := "version = 1\n[[package]]\nname = \"shop\"\nversion = \"0.1.0\"\nsource = { virtual = \".\" }\ndependencies = [{ name = \"shop-core\" }]\n\n" +
		"[[package]]\nname = \"shop-core\"\nversion = \"0.1.0\"\nsource = { editable = \"packages/shop-core\" }\ndependencies = [{ name = \"markupsafe\" }]\n\n" +
		"[[package]]\nname = \"markupsafe\"\nversion = \"3.0.2\"\n"
	reqs, locals, err := uvLock(fstest.MapFS{"uv.lock": &fstest.MapFile{Data: []byte(lock)}}, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 1 || reqs[0].name != "markupsafe" || len(locals) != 1 || locals[0] != "packages/shop-core" {
		t.Errorf("uvLock() = %+v, %v; want markupsafe pinned and packages/shop-core local", reqs, locals)
	}
}
