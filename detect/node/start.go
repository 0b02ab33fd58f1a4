package node

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/packer-build/packer/config"
	"github.com/packer-build/packer/detect"
)

// devCommands start development servers or compile on the fly; a start
// script running one of them is not what production should run.
var devCommands = map[string]bool{"nodemon": true, "ts-node": true, "ts-node-dev": true, "tsx": true, "vite": true, "react-scripts": true, "vue-cli-service": true, "ng": true, "webpack-dev-server": true}

var envAssign = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// start is how the image starts the app.
type start struct {
	argv   []string
	env    map[string]string
	source string
	// dir is where the command runs, relative to the app (a start script
	// `cd apps/web && npm start`), "" for the app's own directory.
	dir string
}

// startCommand resolves how to start a server: Procfile web:, else the
// start script run directly (no npm between the runtime and node), else
// main, else server.js / index.js / app.js. ok=false when there is none.
func startCommand(src fs.FS, pkg *packageJSON) (start, bool, error) {
	if b, err := fs.ReadFile(src, "Procfile"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "web" {
				st, err := fromScript(src, pkg, strings.TrimSpace(v), "Procfile web:")
				return st, err == nil, err
			}
		}
	}
	script, name := pkg.Scripts["start"], "start"
	if isDev(script) {
		for _, alt := range []string{"start:prod", "start:production", "serve"} {
			if s := pkg.Scripts[alt]; s != "" && !isDev(s) {
				script, name = s, alt
				break
			}
		}
	}
	if script != "" && !isDev(script) {
		st, err := fromScript(src, pkg, script, fmt.Sprintf("package.json scripts.%s: %s", name, script))
		return st, err == nil, err
	}
	if f := bunEntry(src, pkg); f != "" {
		return start{argv: []string{"bun", "run", f}, source: "package.json " + bunEntryField(pkg) + ": " + f + " (TypeScript, run by bun)"}, true, nil
	}
	if pkg.Main != "" {
		return start{argv: []string{"node", pkg.Main}, source: "package.json main: " + pkg.Main}, true, nil
	}
	for _, f := range []string{"server.js", "index.js", "app.js", "server.mjs", "index.mjs", "app.mjs"} {
		if detect.Exists(src, f) {
			return start{argv: []string{"node", f}, source: f + " found"}, true, nil
		}
	}
	return start{}, false, nil
}

func isDev(script string) bool {
	w := strings.Fields(script)
	for len(w) > 0 && envAssign.MatchString(w[0]) {
		w = w[1:]
	}
	if len(w) == 0 {
		return false
	}
	if devCommands[w[0]] {
		return true
	}
	// nest start (without --prod builds), next dev, node --watch, bun
	// --watch / --hot.
	return (w[0] == "nest" && len(w) > 1 && w[1] == "start") || (w[0] == "next" && len(w) > 1 && w[1] == "dev") ||
		(w[0] == "node" && len(w) > 1 && w[1] == "--watch") ||
		(w[0] == "bun" && (slices.Contains(w, "--watch") || slices.Contains(w, "--hot")))
}

// fromScript turns a script into an argv: leading VAR=value words become
// ENV; `node x` stays; a dependency's bin runs from node_modules/.bin; a
// script with shell syntax runs under sh -c.
func fromScript(src fs.FS, pkg *packageJSON, script, source string) (start, error) {
	return resolveScript(src, pkg, "", script, source, 0)
}

// cdThen is a start script that changes into a workspace package and runs
// its start there: `cd apps/web && npm start`.
var cdThen = regexp.MustCompile(`^cd\s+([A-Za-z0-9_./@-]+)\s*&&\s*(.+)$`)

// resolveScript turns a script into the command the image runs, without a
// package manager or shell between the runtime and node where it can:
// `npm run X` / `yarn X` / `pnpm X` run script X (resolved again), and
// `cd DIR && ...` runs in DIR with DIR's package.json. dir is where the
// script runs, relative to the app.
func resolveScript(src fs.FS, pkg *packageJSON, dir, script, source string, depth int) (start, error) {
	if depth > 4 {
		return start{}, fmt.Errorf("%s: the scripts call each other more than 4 deep; make the start script run node directly", source)
	}
	if m := cdThen.FindStringSubmatch(strings.TrimSpace(script)); m != nil && !strings.ContainsAny(m[2], "&|;<>$`()") {
		sub := path.Join(dir, m[1])
		subPkg := &packageJSON{}
		if b, err := fs.ReadFile(src, path.Join(sub, "package.json")); err == nil {
			if err := json.Unmarshal(b, subPkg); err != nil {
				return start{}, fmt.Errorf("%s/package.json: %v", sub, err)
			}
		}
		return resolveScript(src, subPkg, sub, m[2], source, depth+1)
	}
	if strings.ContainsAny(script, "&|;<>$`()") {
		return start{argv: []string{"sh", "-c", script}, source: source + " (run by sh: it uses shell syntax)", dir: dir}, nil
	}
	w, err := config.SplitCommand(script)
	if err != nil {
		return start{}, fmt.Errorf("%s: %w", source, err)
	}
	st := start{env: map[string]string{}, source: source, dir: dir}
	for len(w) > 0 && envAssign.MatchString(w[0]) {
		k, v, _ := strings.Cut(w[0], "=")
		st.env[k] = v
		w = w[1:]
	}
	if len(w) == 0 {
		return start{}, fmt.Errorf("%s: no command", source)
	}
	switch {
	case w[0] == "node" || strings.Contains(w[0], "/"):
		st.argv = w
	case w[0] == "bun" && bunRunsFile(src, dir, w):
		// bun index.ts, bun run src/server.ts: bun is the runtime.
		st.argv = w
	case w[0] == "npm" || w[0] == "yarn" || w[0] == "pnpm" || w[0] == "bun":
		name, rest := scriptOf(w)
		sc, ok := pkg.Scripts[name]
		if !ok && name == "start" {
			sc, ok = "node server.js", true // npm start's default
		}
		if name == "" || !ok {
			return start{}, fmt.Errorf("%s runs a package manager (%s) for a script package.json does not have; make the start script run node directly (e.g. \"node server.js\"), or add a Procfile with web: <command>", source, strings.Join(w, " "))
		}
		inner, err := resolveScript(src, pkg, dir, sc, source, depth+1)
		if err != nil {
			return start{}, err
		}
		for k, v := range st.env {
			inner.env[k] = v
		}
		inner.argv = append(inner.argv, rest...)
		inner.source = source + " → scripts." + name + ": " + sc
		return inner, nil
	case dir != "":
		// A binary of a workspace package: found on PATH (its own and the
		// root's node_modules/.bin, where workspaces hoist it).
		st.argv = w
	default:
		st.argv = append([]string{path.Join("node_modules", ".bin", w[0])}, w[1:]...)
	}
	return st, nil
}

// scriptOf reads which script a package manager command runs and the
// arguments passed on: npm run X -- a, npm start, yarn X, yarn run X,
// pnpm X, pnpm run X, bun run X.
func scriptOf(w []string) (string, []string) {
	args := w[1:]
	if len(args) == 0 {
		return "", nil
	}
	switch args[0] {
	case "start", "test":
		if w[0] == "npm" || len(args) == 1 || args[1] == "--" {
			return args[0], trimDashes(args[1:])
		}
	case "run", "run-script":
		if len(args) > 1 {
			return args[1], trimDashes(args[2:])
		}
		return "", nil
	}
	if w[0] == "npm" {
		return "", nil // npm X is a command, not a script
	}
	if strings.HasPrefix(args[0], "-") {
		return "", nil
	}
	return args[0], trimDashes(args[1:])
}

func trimDashes(a []string) []string {
	if len(a) > 0 && a[0] == "--" {
		return a[1:]
	}
	return a
}
