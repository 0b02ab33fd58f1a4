// Package python plans images for Python apps: dependencies pinned by the
// app's lockfile (requirements.txt, poetry.lock, uv.lock, pdm.lock,
// Pipfile.lock) installed by the host's pip for the image's Python version
// and platform into their own layer; Django, Flask and FastAPI started
// with gunicorn or uvicorn.
package python

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/plan"
)

// DefaultVersion is the Python used when the app does not say.
const DefaultVersion = "3.13"

// Where things land in the image.
const (
	AppDir      = plan.AppDir
	PackagesDir = "/opt/python/packages"
)

// maxGlibc is the newest manylinux glibc the default bases (Debian 12
// python:*-slim) support; wheels for newer glibc are not chosen.
const maxGlibc = 36

// Provider is the Python provider.
type Provider struct{}

var _ detect.Provider = Provider{}

func (Provider) Name() string { return "python" }
func (Provider) Hint() string {
	return "requirements.txt, pyproject.toml, Pipfile or setup.py (Python)"
}

var markers = []string{"requirements.txt", "pyproject.toml", "Pipfile", "Pipfile.lock", "setup.py", "setup.cfg", "poetry.lock", "uv.lock", "pdm.lock"}

func (Provider) Detect(_ context.Context, src fs.FS) (bool, error) {
	for _, m := range markers {
		if detect.Exists(src, m) {
			return true, nil
		}
	}
	return false, nil
}

type pyproject struct {
	Project struct {
		Name           string   `toml:"name"`
		RequiresPython string   `toml:"requires-python"`
		Dependencies   []string `toml:"dependencies"`
	} `toml:"project"`
	Tool struct {
		Poetry map[string]any `toml:"poetry"`
	} `toml:"tool"`
}

func (Provider) Plan(_ context.Context, src fs.FS, opts detect.Options) (*plan.Plan, error) {
	var pp pyproject
	hasPyproject := detect.Exists(src, "pyproject.toml")
	if hasPyproject {
		b, err := fs.ReadFile(src, "pyproject.toml")
		if err != nil {
			return nil, err
		}
		if err := toml.Unmarshal(b, &pp); err != nil {
			if de, ok := err.(*toml.DecodeError); ok {
				row, col := de.Position()
				return nil, fmt.Errorf("pyproject.toml:%d:%d: %v; fix the TOML there", row, col, err)
			}
			return nil, fmt.Errorf("pyproject.toml: %v; fix the TOML", err)
		}
	}
	evidence := []string{}
	version, why := pythonVersion(src, pp.Project.RequiresPython)
	evidence = append(evidence, why)

	var locals []string // uv workspace members: local source trees, not packages
	reqFile, reqText, lockWhy, deps, err := requirements(src, &pp, opts.AllowUnlocked, &locals)
	if err != nil {
		return nil, err
	}
	evidence = append(evidence, lockWhy)

	p := &plan.Plan{
		Provider:   "python",
		Base:       "python:" + version + "-slim",
		Exclude:    []string{".venv", "venv", "env/pyvenv.cfg", "**/__pycache__", "**/*.pyc", ".tox", ".nox", ".pytest_cache", ".mypy_cache", ".ruff_cache", "*.egg-info", ".packer-out"},
		WorkingDir: AppDir,
		User:       plan.NonRootUser,
		Ports:      []int{8080},
		Env: map[string]string{
			"PORT": "8080", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": PackagesDir,
		},
		Runtime: map[string]string{"python": version},
		Init:    true,
		// Packages are installed for this Python version (wheels, compiled
		// bytecode): a base with another one cannot run them.
		BaseRuntimes: []plan.BaseRuntime{{Name: "Python", Want: version, Env: "PYTHON_VERSION", Dpkg: "python3", Strict: true, Asked: why,
			Host: []string{"python3", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"}}},
	}
	if reqFile != "" || reqText != "" {
		step := installStep(version, reqFile, reqText)
		p.Steps = append(p.Steps, step)
		p.Layers = append(p.Layers, plan.Layer{Name: "deps", From: "deps", Root: ".packer-out/packages", Exclude: []string{"bin"}, Dest: PackagesDir})
	}
	p.Layers = append(p.Layers, plan.Layer{Name: "app", From: plan.FromSource, Dest: AppDir})
	for _, m := range nativeModules {
		if deps[m.Name] {
			evidence = append(evidence, p.AddNativeModule(m))
		}
	}
	if len(locals) > 0 {
		// Workspace members ship with the app's source and are imported
		// from it (as uv's editable installs do), not installed from an
		// index, where they do not exist.
		paths := []string{PackagesDir}
		for _, d := range locals {
			root := d
			if detect.IsDir(src, path.Join(d, "src")) {
				root = path.Join(d, "src")
			}
			paths = append(paths, path.Join(AppDir, root))
		}
		p.Env["PYTHONPATH"] = strings.Join(paths, ":")
		evidence = append(evidence, "uv workspace members imported from the source tree: "+strings.Join(locals, ", "))
	}

	st, err := startCommand(src, deps)
	if err != nil {
		return nil, err
	}
	if st.django != "" && len(p.Steps) > 0 {
		if root, why := staticRoot(src, st.django); root != "" {
			p.Steps = append(p.Steps, collectStatic(version))
			p.Layers = append(p.Layers, plan.Layer{Name: "static", From: "collectstatic", Include: []string{root}, Dest: AppDir})
			evidence = append(evidence, why)
		}
	}
	evidence = append(evidence, st.why...)
	p.Entrypoint = st.argv
	for k, v := range st.env {
		p.Env[k] = v
	}
	p.Evidence = evidence
	return p, nil
}

// nativeModules are the packages (as pip names them) whose source builds
// need system libraries; their -binary variants and wheels for the
// image's Python need none, but pip builds from source where no wheel
// fits. Debian package names, the default bases' distribution.
var nativeModules = []plan.NativeModule{
	{Name: "psycopg2", Build: []string{"gcc", "libpq-dev", "python3-dev"}, Run: []string{"libpq5"}},
	{Name: "mysqlclient", Build: []string{"gcc", "pkg-config", "default-libmysqlclient-dev", "python3-dev"}, Run: []string{"libmariadb3"}},
}

// pythonHere makes a step's python3 the machine's: a .python-version
// naming an interpreter this machine lacks breaks pyenv's python3 in the
// app directory, so the step falls back to running from /.
const pythonHere = "# A .python-version naming an interpreter this machine lacks breaks pyenv's\n" +
	"# python3 in the app directory; fall back to the machine's default then.\n" +
	"python3 -c '' 2>/dev/null || cd /"

// installStep installs pinned requirements with the host's pip: for the
// image's Python version and platform (binary wheels only) when the host
// differs, or natively (sdists built here, bytecode precompiled) when the
// host's Python and machine match the image's.
func installStep(version, reqFile, reqText string) plan.Step {
	files := map[string]string{}
	if reqText != "" {
		reqFile = ".packer/requirements.txt"
		files[reqFile] = reqText
	}
	var platforms []string
	for g := maxGlibc; g >= 17; g-- {
		platforms = append(platforms, fmt.Sprintf("--platform manylinux_2_%d_%s", g, plan.TargetMachine))
	}
	platforms = append(platforms, "--platform manylinux2014_"+plan.TargetMachine)
	common := `python3 -m pip install --no-compile --no-warn-conflicts --disable-pip-version-check --no-input --root-user-action=ignore --target "$STAGE/.packer-out/packages" -r "$REQ"`
	script := strings.Join([]string{
		`set -e`,
		`STAGE=$PWD`,
		`REQ="$STAGE/` + reqFile + `"`,
		pythonHere,
		`HOST=$(python3 -c 'import sys, platform; print("%d.%d %s" % (sys.version_info[0], sys.version_info[1], platform.machine()))')`,
		`if [ "$HOST" = "` + version + ` ` + plan.TargetMachine + `" ]; then`,
		`  # Source builds leave no debug info, which would record pip's random`,
		`  # build directory: the same input gives the same bytes.`,
		`  export CFLAGS="${CFLAGS:-} -g0" CXXFLAGS="${CXXFLAGS:-} -g0"`,
		`  ` + common,
		`  python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash "$STAGE/.packer-out/packages"`,
		`else`,
		`  echo "python $HOST here, ` + version + ` ` + plan.TargetMachine + ` in the image: installing binary wheels for the image; bytecode is compiled on first import"`,
		`  ` + common + ` --python-version ` + version + ` --implementation cp --only-binary=:all: ` + strings.Join(platforms, " "),
		`fi`,
	}, "\n")
	inputs := []string{reqFile}
	if reqText != "" {
		inputs = nil // the generated file is in Files, part of the key
	}
	return plan.Step{
		Name:        "deps",
		Run:         []string{"sh", "-c", script},
		Files:       files,
		Inputs:      append(inputs, "pip.conf"),
		Toolchain:   pipToolchain,
		NativeCheck: true,
		Output:      ".",
		Errors: []plan.ErrorHint{
			{Pattern: `No matching distribution found for ([^\s]+)`, Message: "$1 has no binary wheel for Python " + version + " on linux/" + plan.TargetArch + "; pin a version that publishes one, or let the steps run inside the image (--executor image; the default when this machine's Python differs), or on a machine whose Python (" + version + ") and architecture match the image: there pip builds it from source"},
			{Pattern: `THESE PACKAGES DO NOT MATCH THE HASHES[\s\S]*?\n\s+([A-Za-z0-9_.\-]+)==`, Message: "the download of $1 does not match the lockfile's hash: the lockfile is wrong or the index served another file; regenerate the lockfile"},
			{Pattern: `Could not find a version that satisfies the requirement ([^\s]+)`, Message: "no release of $1 fits Python " + version + " on linux/" + plan.TargetArch + "; check the pin and its wheels"},
		},
		Hint: "pip's output above names the package",
	}
}

var staticRootRe = regexp.MustCompile(`(?m)^STATIC_ROOT\s*=\s*(.*)$`)
var lastString = regexp.MustCompile(`["']([^"']+)["']\s*\)?\s*$`)

// staticRoot reads STATIC_ROOT from PROJECT/settings.py: a directory under
// the project root (BASE_DIR / "staticfiles", os.path.join(BASE_DIR, ...)).
func staticRoot(src fs.FS, project string) (string, string) {
	settings := strings.ReplaceAll(project, ".", "/") + "/settings.py"
	b, err := fs.ReadFile(src, settings)
	if err != nil {
		return "", ""
	}
	m := staticRootRe.FindSubmatch(b)
	if m == nil {
		return "", ""
	}
	expr := strings.TrimSpace(string(m[1]))
	s := lastString.FindStringSubmatch(expr)
	if s == nil || strings.HasPrefix(s[1], "/") || !strings.Contains(expr, "BASE_DIR") {
		return "", ""
	}
	dir := strings.Trim(s[1], "/")
	return dir, fmt.Sprintf("Django STATIC_ROOT %s: collectstatic runs at build time into /app/%s", expr, dir)
}

// collectStatic runs manage.py collectstatic in the staging copy with the
// installed packages, after the dependency step.
func collectStatic(version string) plan.Step {
	script := strings.Join([]string{
		`set -e`,
		`STAGE=$PWD`,
		pythonHere,
		`PYTHONPATH="$STAGE/.packer-out/packages" PYTHONDONTWRITEBYTECODE=1 python3 "$STAGE/manage.py" collectstatic --noinput`,
	}, "\n")
	return plan.Step{
		Name: "collectstatic", Run: []string{"sh", "-c", script}, Needs: []string{"deps"}, Output: ".",
		Toolchain: []string{"python3", "--version"},
		Hint:      "manage.py collectstatic failed; it runs with this machine's python3 and the packages installed for Python " + version + ": run it locally to see why",
	}
}

// requirements finds what to install: a requirements file to pass to pip,
// or pinned requirements generated from a lockfile. deps lists the
// top-level distribution names, for framework detection.
func requirements(src fs.FS, pp *pyproject, allowUnlocked bool, locals *[]string) (file, text, why string, deps map[string]bool, err error) {
	deps = map[string]bool{}
	var reqs []requirement
	var source string
	switch {
	case detect.Exists(src, "uv.lock"):
		source = "uv.lock"
		reqs, *locals, err = uvLock(src, pp.Project.Name)
	case detect.Exists(src, "poetry.lock"):
		source = "poetry.lock"
		reqs, err = poetryLock(src)
	case detect.Exists(src, "pdm.lock"):
		source = "pdm.lock"
		reqs, err = pdmLock(src)
	case detect.Exists(src, "Pipfile.lock"):
		source = "Pipfile.lock"
		reqs, err = pipfileLock(src)
	case detect.Exists(src, "requirements.txt"):
		b, rerr := fs.ReadFile(src, "requirements.txt")
		if rerr != nil {
			return "", "", "", nil, rerr
		}
		for _, n := range requirementNames(string(b)) {
			deps[n] = true
		}
		return "requirements.txt", "", "requirements.txt found: installed with pip", deps, nil
	case detect.Exists(src, "Pipfile"):
		return "", "", "", nil, fmt.Errorf("Pipfile without Pipfile.lock: run `pipenv lock` and commit Pipfile.lock")
	case len(pp.Project.Dependencies) > 0:
		if !allowUnlocked {
			return "", "", "", nil, fmt.Errorf("pyproject.toml lists dependencies but there is no lockfile (uv.lock, poetry.lock, pdm.lock or requirements.txt): packer installs exactly what a lockfile pins; run `uv lock` (or poetry lock / pdm lock) and commit it, or pass --allow-unlocked")
		}
		var b strings.Builder
		b.WriteString("# generated by packer from pyproject.toml [project] dependencies (unlocked)\n")
		for _, d := range pp.Project.Dependencies {
			b.WriteString(d + "\n")
			deps[firstName(d)] = true
		}
		return "", b.String(), "no lockfile: pyproject.toml's dependencies, unlocked, as --allow-unlocked asked", deps, nil
	case pp.Tool.Poetry != nil:
		return "", "", "", nil, fmt.Errorf("pyproject.toml uses Poetry but there is no poetry.lock: run `poetry lock` and commit it")
	default:
		return "", "", "no dependencies declared", deps, nil
	}
	if err != nil {
		return "", "", "", nil, err
	}
	for _, r := range reqs {
		deps[normalize(r.name)] = true
	}
	return "", requirementsText(source, reqs), fmt.Sprintf("%s found: %d pinned production packages, hashes checked by pip", source, len(reqs)), deps, nil
}

var nameRe = regexp.MustCompile(`^\s*([A-Za-z0-9][A-Za-z0-9._-]*)`)

func firstName(spec string) string {
	if m := nameRe.FindStringSubmatch(spec); m != nil {
		return normalize(m[1])
	}
	return ""
}

func requirementNames(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "-") {
			continue
		}
		if n := firstName(line); n != "" {
			out = append(out, n)
		}
	}
	return out
}

var versionRe = regexp.MustCompile(`3\.(\d+)`)

// pythonVersion picks X.Y from .python-version, runtime.txt, Pipfile's
// python_version or requires-python.
func pythonVersion(src fs.FS, requires string) (string, string) {
	for _, f := range []string{".python-version", "runtime.txt"} {
		b, err := fs.ReadFile(src, f)
		if err != nil {
			continue
		}
		// The first line that is not a comment (pyenv and uv skip # lines).
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if m := versionRe.FindStringSubmatch(line); m != nil {
				return "3." + m[1], fmt.Sprintf("%s says %s: Python 3.%s", f, line, m[1])
			}
			break
		}
	}
	if b, err := fs.ReadFile(src, "Pipfile"); err == nil {
		var pf struct {
			Requires struct {
				PythonVersion string `toml:"python_version"`
			} `toml:"requires"`
		}
		if toml.Unmarshal(b, &pf) == nil {
			if m := versionRe.FindStringSubmatch(pf.Requires.PythonVersion); m != nil {
				return "3." + m[1], "Pipfile python_version " + pf.Requires.PythonVersion
			}
		}
	}
	if r := strings.TrimSpace(requires); r != "" {
		m := versionRe.FindStringSubmatch(r)
		if m != nil {
			minor, _ := strconv.Atoi(m[1])
			def, _ := strconv.Atoi(strings.TrimPrefix(DefaultVersion, "3."))
			if strings.HasPrefix(r, ">") && minor <= def && !strings.Contains(r, "<") {
				return DefaultVersion, fmt.Sprintf("requires-python %q: Python %s", r, DefaultVersion)
			}
			return "3." + m[1], fmt.Sprintf("requires-python %q: Python 3.%s", r, m[1])
		}
	}
	return DefaultVersion, "no .python-version, runtime.txt or requires-python: Python " + DefaultVersion
}

// pipToolchain prints the interpreter and pip versions for the install
// step's cache key (and fails without pip, as the step would). It reads
// pip's version from its metadata: importing pip, as `pip --version` does,
// costs ~0.1 s on every build.
var pipToolchain = []string{"python3", "-c", "import sys, importlib.metadata as m; print('pip', m.version('pip'), sys.executable, sys.version)"}
