package node

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
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
}

// startCommand resolves how to start a server: Procfile web:, else the
// start script run directly (no npm between the runtime and node), else
// main, else server.js / index.js / app.js. ok=false when there is none.
func startCommand(src fs.FS, pkg *packageJSON) (start, bool, error) {
	if b, err := fs.ReadFile(src, "Procfile"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "web" {
				st, err := fromScript(src, strings.TrimSpace(v), "Procfile web:")
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
		st, err := fromScript(src, script, fmt.Sprintf("package.json scripts.%s: %s", name, script))
		return st, err == nil, err
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
	// nest start (without --prod builds), next dev, node --watch.
	return (w[0] == "nest" && len(w) > 1 && w[1] == "start") || (w[0] == "next" && len(w) > 1 && w[1] == "dev") ||
		(w[0] == "node" && len(w) > 1 && w[1] == "--watch")
}

// fromScript turns a script into an argv: leading VAR=value words become
// ENV; `node x` stays; a dependency's bin runs from node_modules/.bin; a
// script with shell syntax runs under sh -c.
func fromScript(src fs.FS, script, source string) (start, error) {
	if strings.ContainsAny(script, "&|;<>$`()") {
		return start{argv: []string{"sh", "-c", script}, source: source + " (run by sh: it uses shell syntax)"}, nil
	}
	w, err := config.SplitCommand(script)
	if err != nil {
		return start{}, fmt.Errorf("%s: %w", source, err)
	}
	st := start{env: map[string]string{}, source: source}
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
	case w[0] == "npm" || w[0] == "yarn" || w[0] == "pnpm":
		return start{}, fmt.Errorf("%s runs a package manager; make the start script run node directly (e.g. \"node server.js\"), or add a Procfile with web: <command>", source)
	default:
		st.argv = append([]string{path.Join("node_modules", ".bin", w[0])}, w[1:]...)
	}
	return st, nil
}
