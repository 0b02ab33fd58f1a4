package python

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/packer-build/packer/config"
	"github.com/packer-build/packer/detect"
)

type start struct {
	argv   []string
	env    map[string]string
	why    []string
	django string // the Django project, when it is one
}

// consoleScripts run as `python3 -m NAME`: pip's console scripts carry
// the build machine's interpreter path and are not shipped.
var consoleScripts = map[string]string{"gunicorn": "gunicorn", "uvicorn": "uvicorn", "hypercorn": "hypercorn", "daphne": "daphne", "flask": "flask", "celery": "celery", "waitress-serve": "waitress", "granian": "granian"}

var (
	settingsRe = regexp.MustCompile(`DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([A-Za-z0-9_.]+)\.settings['"]`)
	flaskRe    = regexp.MustCompile(`(?m)^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:flask\.)?Flask\(`)
	fastapiRe  = regexp.MustCompile(`(?m)^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:fastapi\.)?FastAPI\(`)
	factoryRe  = regexp.MustCompile(`(?m)^def (create_app)\(`)
)

// startCommand: Procfile web:, else Django / FastAPI / Flask, else
// main.py / app.py.
func startCommand(src fs.FS, deps map[string]bool) (start, error) {
	if b, err := fs.ReadFile(src, "Procfile"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "web" {
				st, err := fromProcfile(strings.TrimSpace(v))
				if err != nil {
					return st, err
				}
				// A Django app started by its Procfile still needs its
				// static files collected at build time.
				if project := djangoProject(src, deps); project != "" {
					st.django = project
					st.env = map[string]string{"DJANGO_SETTINGS_MODULE": project + ".settings"}
					st.why = append(st.why, "Django project "+project+" (manage.py)")
				}
				return st, nil
			}
		}
	}
	if deps["django"] && detect.Exists(src, "manage.py") {
		b, _ := fs.ReadFile(src, "manage.py")
		m := settingsRe.FindSubmatch(b)
		if m == nil {
			return start{}, fmt.Errorf("Django app: manage.py does not set DJANGO_SETTINGS_MODULE to PROJECT.settings; set it, or add a Procfile with web: <command>")
		}
		project := string(m[1])
		if !deps["gunicorn"] {
			return start{}, fmt.Errorf("Django app without gunicorn: add gunicorn to the dependencies (production needs a WSGI server, not runserver), or add a Procfile with web: <command>")
		}
		return start{argv: []string{"python3", "-m", "gunicorn", project + ".wsgi:application"}, env: map[string]string{"DJANGO_SETTINGS_MODULE": project + ".settings"},
			why:    []string{fmt.Sprintf("Django project %s (manage.py): gunicorn %s.wsgi:application on 0.0.0.0:$PORT", project, project)},
			django: project}, nil
	}
	for _, fw := range []struct {
		dep    string
		re     *regexp.Regexp
		server string
	}{{"fastapi", fastapiRe, "uvicorn"}, {"flask", flaskRe, "gunicorn"}} {
		if !deps[fw.dep] {
			continue
		}
		mod, app, ok := findApp(src, fw.re)
		if !ok {
			continue
		}
		target := mod + ":" + app
		switch {
		case fw.server == "uvicorn" || (!deps["gunicorn"] && deps["uvicorn"]):
			if !deps["uvicorn"] {
				return start{}, fmt.Errorf("FastAPI app %s without uvicorn: add uvicorn (or fastapi[standard]) to the dependencies", target)
			}
			return start{argv: []string{"sh", "-c", `exec python3 -m uvicorn ` + target + ` --host 0.0.0.0 --port "${PORT:-8080}"`},
				why: []string{fmt.Sprintf("%s app %s: uvicorn on 0.0.0.0:$PORT", fw.dep, target)}}, nil
		case deps["gunicorn"]:
			return start{argv: []string{"python3", "-m", "gunicorn", target},
				why: []string{fmt.Sprintf("%s app %s: gunicorn on 0.0.0.0:$PORT", fw.dep, target)}}, nil
		default:
			// The app may run its own server (app.run(...) under
			// if __name__ == "__main__", as Cloud Run's and Flask's
			// quickstarts do): start that, and say what production wants.
			if file, ok := runsItself(src, mod, app+".run("); ok {
				why := []string{fmt.Sprintf("Flask app %s runs its own server in %s: python3 %s", target, file, file),
					"warning: that is Flask's development server; add gunicorn to the dependencies for production"}
				if !bindsAll(src, file) {
					why = append(why, "warning: app.run() without host=\"0.0.0.0\" listens on 127.0.0.1 only, which nothing outside the container reaches")
				}
				return start{argv: []string{"python3", file}, why: why}, nil
			}
			return start{}, fmt.Errorf("Flask app %s without a production server: add gunicorn to the dependencies, or add a Procfile with web: <command>", target)
		}
	}
	for _, f := range []string{"main.py", "app.py", "server.py", "run.py"} {
		if detect.Exists(src, f) {
			return start{argv: []string{"python3", f}, why: []string{f + " found: python3 " + f}}, nil
		}
	}
	return start{}, fmt.Errorf("no way to start the app: no Procfile web: line, no Django manage.py, no Flask or FastAPI app object, and no main.py or app.py; add a Procfile with web: <command>")
}

var mainGuard = regexp.MustCompile(`(?m)^if\s+__name__\s*==\s*["']__main__["']\s*:`)

// runsItself reports whether module mod's file starts a server itself
// (call, such as "app.run(") under if __name__ == "__main__", and names
// the file.
func runsItself(src fs.FS, mod, call string) (string, bool) {
	file := strings.ReplaceAll(mod, ".", "/") + ".py"
	b, err := fs.ReadFile(src, file)
	if err != nil {
		return "", false
	}
	loc := mainGuard.FindIndex(b)
	return file, loc != nil && strings.Contains(string(b[loc[1]:]), call)
}

var allInterfaces = regexp.MustCompile(`host\s*=\s*["']0\.0\.0\.0["']|host\s*=\s*os\.environ`)

func bindsAll(src fs.FS, file string) bool {
	b, _ := fs.ReadFile(src, file)
	return allInterfaces.Match(b)
}

// djangoProject is the Django project manage.py names, when the app is a
// Django app ("" otherwise).
func djangoProject(src fs.FS, deps map[string]bool) string {
	if !deps["django"] {
		return ""
	}
	b, err := fs.ReadFile(src, "manage.py")
	if err != nil {
		return ""
	}
	if m := settingsRe.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// findApp looks for the app object in the usual modules.
func findApp(src fs.FS, re *regexp.Regexp) (module, name string, ok bool) {
	for _, f := range []string{"app.py", "main.py", "wsgi.py", "asgi.py", "server.py", "app/__init__.py", "app/main.py", "src/app.py", "src/main.py"} {
		b, err := fs.ReadFile(src, f)
		if err != nil {
			continue
		}
		mod := strings.TrimSuffix(strings.TrimSuffix(f, ".py"), "/__init__")
		mod = strings.ReplaceAll(strings.TrimPrefix(mod, "src/"), "/", ".")
		if m := re.FindSubmatch(b); m != nil {
			return mod, string(m[1]), true
		}
		if m := factoryRe.FindSubmatch(b); m != nil && strings.Contains(string(b), "Flask(") {
			return mod, "create_app()", true
		}
	}
	return "", "", false
}

func fromProcfile(cmd string) (start, error) {
	why := []string{"Procfile web: " + cmd}
	if strings.ContainsAny(cmd, "&|;<>$`()") {
		return start{argv: []string{"sh", "-c", cmd}, why: why}, nil
	}
	w, err := config.SplitCommand(cmd)
	if err != nil {
		return start{}, fmt.Errorf("Procfile: %w", err)
	}
	if mod, ok := consoleScripts[path.Base(w[0])]; ok {
		w = append([]string{"python3", "-m", mod}, w[1:]...)
	} else if w[0] == "python" {
		w[0] = "python3"
	}
	return start{argv: w, why: why}, nil
}
