package node

import (
	"bufio"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/plan"
)

// packageManager knows how to install with one package manager.
type packageManager struct {
	Name    string // npm, pnpm, yarn, yarn-berry, bun
	Version string // from packageManager, when given
	// Major is the pnpm major picked from the lockfile's version when
	// packageManager does not pin one ("" otherwise).
	Major    string
	Lockfile string // the lockfile found
	// PnP: yarn 2+ with Plug'n'Play (its default linker): dependencies
	// are zip files in .yarn/cache, resolved through .pnp.cjs.
	PnP bool
	exe []string
}

var lockfiles = []struct{ file, pm string }{
	{"npm-shrinkwrap.json", "npm"},
	{"package-lock.json", "npm"},
	{"pnpm-lock.yaml", "pnpm"},
	{"yarn.lock", "yarn"},
	{"bun.lock", "bun"},
	{"bun.lockb", "bun"},
}

var pmField = regexp.MustCompile(`^(npm|pnpm|yarn|bun)@([0-9][^+]*)`)

// choosePackageManager reads the packageManager field and the lockfiles.
func choosePackageManager(src fs.FS, pkg *packageJSON, allowUnlocked bool) (*packageManager, []string, error) {
	var evidence []string
	found := map[string][]string{}
	var files []string
	for _, l := range lockfiles {
		if detect.Exists(src, l.file) {
			found[l.pm] = append(found[l.pm], l.file)
			files = append(files, l.file)
		}
	}
	var declared, version string
	if pkg.PackageManager != "" {
		m := pmField.FindStringSubmatch(pkg.PackageManager)
		if m == nil {
			return nil, nil, fmt.Errorf("package.json: packageManager %q is not NAME@VERSION for npm, pnpm, yarn or bun", pkg.PackageManager)
		}
		declared, version = m[1], m[2]
		evidence = append(evidence, "package.json packageManager: "+pkg.PackageManager)
	}
	if len(found) > 1 {
		pms := make([]string, 0, len(found))
		for pm := range found {
			pms = append(pms, pm)
		}
		sort.Strings(pms)
		return nil, nil, fmt.Errorf("conflicting lockfiles %s (%s): keep the one of the package manager you use and delete the others", strings.Join(files, " and "), strings.Join(pms, ", "))
	}
	name := declared
	for pm := range found {
		if declared != "" && declared != pm {
			return nil, nil, fmt.Errorf("package.json says packageManager %s, but the lockfile is %s; install with %s to create its lockfile, or fix packageManager", pkg.PackageManager, found[pm][0], declared)
		}
		name = pm
	}
	if name == "" {
		name = "npm"
	}
	p := &packageManager{Name: name, Version: version}
	if l := found[name]; len(l) > 0 {
		p.Lockfile = l[0]
		evidence = append(evidence, p.Lockfile+" found: installing with "+name)
	} else if allowUnlocked {
		evidence = append(evidence, "no lockfile: an unlocked install, as --allow-unlocked asked")
	} else {
		return nil, nil, fmt.Errorf("no lockfile (package-lock.json, pnpm-lock.yaml, yarn.lock or bun.lock): packer installs exactly what a lockfile pins; run `%s install` and commit the lockfile, or pass --allow-unlocked", name)
	}
	if name == "pnpm" && version == "" && p.Lockfile != "" {
		if lv, major := pnpmForLockfile(src, p.Lockfile); major != "" {
			p.Major = major
			evidence = append(evidence, fmt.Sprintf("pnpm-lock.yaml lockfileVersion %s and no packageManager: pnpm %s (the newest that writes it)", lv, major))
		}
	}
	if name == "yarn" && p.Lockfile != "" {
		berry, err := isBerryLock(src, p.Lockfile)
		if err != nil {
			return nil, nil, err
		}
		if berry || (version != "" && !strings.HasPrefix(version, "1.")) {
			p.Name = "yarn-berry"
			switch linker := yarnLinker(src); linker {
			case "node-modules":
				evidence = append(evidence, "yarn 2+ with nodeLinker: node-modules")
			case "", "pnp":
				p.PnP = true
				evidence = append(evidence, "yarn 2+ with Plug'n'Play: shipping .pnp.cjs and .yarn/cache (the zip files, kept in the project), node started with --require .pnp.cjs")
			default:
				return nil, nil, fmt.Errorf("yarn nodeLinker %q is not supported; use node-modules or pnp in .yarnrc.yml", linker)
			}
		}
	}
	return p, evidence, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func isBerryLock(src fs.FS, name string) (bool, error) {
	f, err := src.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; i < 5 && sc.Scan(); i++ {
		if strings.Contains(sc.Text(), "yarn lockfile v1") {
			return false, nil
		}
		if strings.HasPrefix(sc.Text(), "__metadata:") {
			return true, nil
		}
	}
	return true, nil
}

func yarnLinker(src fs.FS) string {
	b, err := fs.ReadFile(src, ".yarnrc.yml")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.TrimSpace(k) == "nodeLinker" {
			return strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return ""
}

// cli is how to call the package manager: pnpm and yarn through corepack,
// which honours packageManager's pinned version.
func (p *packageManager) cli() []string {
	switch p.Name {
	case "pnpm":
		if p.Major != "" {
			return []string{"corepack", "pnpm@" + p.Major}
		}
		return []string{"corepack", "pnpm"}
	case "yarn", "yarn-berry":
		return []string{"corepack", "yarn"}
	case "bun":
		return []string{"bun"}
	}
	return []string{"npm"}
}

// installProd installs production dependencies only, for the target
// platform where the package manager can (npm's --os/--cpu).
func (p *packageManager) installProd() []string {
	c := p.cli()
	switch p.Name {
	case "npm":
		if p.Lockfile == "" {
			return append(c, "install", "--omit=dev", "--no-audit", "--no-fund", "--os=linux", "--cpu=${NODEARCH}")
		}
		return append(c, "ci", "--omit=dev", "--no-audit", "--no-fund", "--os=linux", "--cpu=${NODEARCH}")
	case "pnpm":
		return append(c, "install", "--prod", frozen(p, "--frozen-lockfile"))
	case "yarn":
		return append(c, "install", "--production", "--non-interactive", frozen(p, "--frozen-lockfile"))
	case "yarn-berry":
		return p.berryFocus("--all")
	case "bun":
		return append(c, "install", "--production", frozen(p, "--frozen-lockfile"))
	}
	return nil
}

// installEnv is the environment of the production install.
func (p *packageManager) installEnv() map[string]string {
	env := map[string]string{"NODE_ENV": "production"}
	if p.PnP {
		// The zips in the project, not yarn's global cache, so they ship.
		env["YARN_ENABLE_GLOBAL_CACHE"] = "false"
	}
	return env
}

// pnpFiles are what a Plug'n'Play install leaves and the app needs.
var pnpFiles = []string{".pnp.cjs", ".pnp.loader.mjs", ".pnp.data.json", ".yarn/cache", ".yarn/unplugged"}

// modules are the paths an install leaves the dependencies in.
func (p *packageManager) modules() []string {
	if p.PnP {
		return pnpFiles
	}
	return []string{"node_modules"}
}

// berryFocus installs the production dependencies of the workspaces named
// (--all, or one workspace's name and those it depends on) with yarn 2+.
// workspaces focus resolves what the lockfile lacks without complaint (and
// --immutable cannot be combined with a lockfile-only install), so a
// lockfile-only install runs first and the lockfile must come out of it
// unchanged; it fetches nothing when the lockfile is complete and links
// nothing.
func (p *packageManager) berryFocus(workspace string) []string {
	c := strings.Join(p.cli(), " ")
	check := ""
	if p.Lockfile != "" {
		check = `lock=$(mktemp) && cp yarn.lock "$lock" && ` + c + ` install --mode=update-lockfile && ` +
			`if ! cmp -s yarn.lock "$lock"; then echo "yarn.lock does not match package.json (yarn would change it)" >&2; exit 1; fi && `
	}
	return []string{"sh", "-c", check + c + " workspaces focus " + workspace + " --production"}
}

// installAll installs every dependency (dev included), for build scripts.
func (p *packageManager) installAll() string {
	c := strings.Join(p.cli(), " ")
	switch p.Name {
	case "npm":
		if p.Lockfile == "" {
			return c + " install --no-audit --no-fund"
		}
		return c + " ci --no-audit --no-fund"
	case "pnpm":
		return c + " install " + frozen(p, "--frozen-lockfile")
	case "yarn":
		return c + " install --non-interactive " + frozen(p, "--frozen-lockfile")
	case "yarn-berry":
		return c + " install --immutable"
	case "bun":
		return c + " install " + frozen(p, "--frozen-lockfile")
	}
	return ""
}

func (p *packageManager) run(script string) string {
	return strings.Join(p.cli(), " ") + " run " + script
}

func frozen(p *packageManager, flag string) string {
	if p.Lockfile == "" {
		return "--no-frozen-lockfile"
	}
	return flag
}

// hint is the fix for a failed install.
func (p *packageManager) hint() string {
	switch p.Name {
	case "npm":
		return "if npm says package.json and package-lock.json are out of sync, run `npm install` and commit package-lock.json"
	case "pnpm":
		return "if pnpm says the lockfile is outdated, run `pnpm install` and commit pnpm-lock.yaml"
	case "yarn", "yarn-berry":
		return "if yarn says the lockfile needs an update, run `yarn install` and commit yarn.lock"
	case "bun":
		return "if bun says the lockfile changed, run `bun install` and commit the lockfile"
	}
	return ""
}

var lockfileVersionRe = regexp.MustCompile(`(?m)^lockfileVersion:\s*['"]?([0-9.]+)['"]?`)

// pnpmForLockfile maps pnpm-lock.yaml's lockfileVersion to the newest pnpm
// major that writes it: 9.0 → 10 (and 9), 6.x → 8, 5.4 → 7, 5.3 → 6.
// Without this, corepack runs its newest pnpm, which may not read it.
func pnpmForLockfile(src fs.FS, lockfile string) (string, string) {
	b, err := fs.ReadFile(src, lockfile)
	if err != nil {
		return "", ""
	}
	m := lockfileVersionRe.FindSubmatch(b)
	if m == nil {
		return "", ""
	}
	lv := string(m[1])
	switch {
	case strings.HasPrefix(lv, "9."):
		return lv, "10"
	case strings.HasPrefix(lv, "6."):
		return lv, "8"
	case lv == "5.4":
		return lv, "7"
	case lv == "5.3":
		return lv, "6"
	}
	return lv, ""
}

// PMDir is where a package manager a start command calls is installed in
// the image (its bin/ goes on PATH).
const PMDir = "/opt/packer/pm"

// defaultPath is the PATH of the Debian-based node images.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// runtimeCLI is the npm package that holds this package manager's CLI as
// one self-contained file (no dependencies to install), and that file:
// pnpm and yarn, which node images lack (corepack would download them at
// start, from a network the container may not have). ok=false for npm
// (node images carry it) and bun (it is the runtime, or not in the image).
func (p *packageManager) runtimeCLI() (name, spec, bin string, ok bool) {
	switch p.Name {
	case "pnpm":
		return "pnpm", "pnpm@" + orDefault(p.Version, orDefault(p.Major, "latest")), "bin/pnpm.cjs", true
	case "yarn":
		return "yarn", "yarn@" + orDefault(p.Version, "1"), "bin/yarn.js", true
	case "yarn-berry":
		return "yarn", "@yarnpkg/cli-dist@" + orDefault(p.Version, "4"), "bin/yarn.js", true
	}
	return "", "", "", false
}

// shipCLI is the step that fetches the package manager's CLI (npm pack,
// so .npmrc's registry and auth apply) into .packer-pm with a bin/NAME
// wrapper, and the layer that puts it at PMDir. Cached by the lockfile
// and the version.
func (p *packageManager) shipCLI() (plan.Step, plan.Layer, bool) {
	name, spec, bin, ok := p.runtimeCLI()
	if !ok {
		return plan.Step{}, plan.Layer{}, false
	}
	script := `set -e; d=.packer-pm; rm -rf "$d"; mkdir -p "$d/bin" "$d/` + name + `"; ` +
		`npm pack --silent --pack-destination "$d" '` + spec + `' >/dev/null; ` +
		`tar -xzf "$d"/*.tgz -C "$d/` + name + `" --strip-components=1 --no-same-owner; rm -f "$d"/*.tgz; ` +
		`printf '#!/bin/sh\nexec node ` + PMDir + `/` + name + `/` + bin + ` "$@"\n' >"$d/bin/` + name + `"; chmod 755 "$d/bin/` + name + `"`
	inputs := []string{"package.json"}
	if p.Lockfile != "" {
		inputs = []string{p.Lockfile}
	}
	step := plan.Step{
		Name: "pm", Run: []string{"sh", "-c", script}, Inputs: inputs, Key: "package manager at run time: " + spec,
		Output: ".packer-pm", Toolchain: toolchain,
		Hint: "fetching " + spec + " with npm pack failed; check the npm registry settings (.npmrc)",
	}
	return step, plan.Layer{Name: "pm", From: "pm", Dest: PMDir}, true
}
