package node

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/packer-build/packer/detect"
)

// workspace is one package of a monorepo.
type workspace struct {
	dir string
	pkg *packageJSON
}

// workspacePatterns reads package.json's workspaces (an array, or yarn's
// {packages: [...]}) and pnpm-workspace.yaml's packages list.
func workspacePatterns(src fs.FS, pkg *packageJSON) []string {
	var pats []string
	if len(pkg.Workspaces) > 0 {
		if json.Unmarshal(pkg.Workspaces, &pats) != nil {
			var obj struct {
				Packages []string `json:"packages"`
			}
			if json.Unmarshal(pkg.Workspaces, &obj) == nil {
				pats = obj.Packages
			}
		}
	}
	if b, err := fs.ReadFile(src, "pnpm-workspace.yaml"); err == nil {
		// A YAML library, so flow style (packages: ["packages/*"]),
		// quotes and comments read as pnpm reads them.
		var ws struct {
			Packages []string `yaml:"packages"`
		}
		if yaml.Unmarshal(b, &ws) == nil {
			pats = append(pats, ws.Packages...)
		}
	}
	return pats
}

// workspaces lists the monorepo's packages by directory.
func workspaces(src fs.FS, patterns []string) (map[string]workspace, error) {
	out := map[string]workspace{}
	for _, p := range patterns {
		if strings.HasPrefix(p, "!") {
			continue
		}
		dirs, err := fs.Glob(src, strings.TrimSuffix(strings.TrimPrefix(p, "./"), "/"))
		if err != nil {
			return nil, fmt.Errorf("workspace pattern %q: %w", p, err)
		}
		for _, d := range dirs {
			if !detect.Exists(src, path.Join(d, "package.json")) {
				continue
			}
			sub, _ := fs.Sub(src, d)
			pkg, err := readPackageJSON(sub)
			if err != nil {
				return nil, fmt.Errorf("%s/%w", d, err)
			}
			out[d] = workspace{dir: d, pkg: pkg}
		}
	}
	return out, nil
}

// closure returns the workspace directories app depends on (through
// dependencies, not devDependencies), dependencies first.
func closure(app workspace, all map[string]workspace) []string {
	byName := map[string]workspace{}
	for _, w := range all {
		byName[w.pkg.Name] = w
	}
	seen := map[string]bool{}
	var order []string
	var visit func(w workspace)
	visit = func(w workspace) {
		names := make([]string, 0, len(w.pkg.Dependencies))
		for n := range w.pkg.Dependencies {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if dep, ok := byName[n]; ok && !seen[dep.dir] {
				seen[dep.dir] = true
				visit(dep)
				order = append(order, dep.dir)
			}
		}
	}
	seen[app.dir] = true
	visit(app)
	return order
}

func workspaceList(all map[string]workspace) string {
	return strings.Join(workspaceDirs(all), ", ")
}

func workspaceDirs(all map[string]workspace) []string {
	var dirs []string
	for d := range all {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return dirs
}
