// Package node plans images for Node.js apps: servers (Express, Fastify,
// Nest, Koa, Hono, ...), Next.js (standalone output or next start) and
// single-page apps (Vite, Create React App, ...) served as static files.
// Dependencies are installed from the lockfile with the host's package
// manager into their own layer, production dependencies only.
package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/plan"
)

// DefaultMajor is the Node.js major used when the app does not say.
const DefaultMajor = 22

// AppDir is where the app lands in the image.
const AppDir = plan.AppDir

type packageJSON struct {
	Name                 string            `json:"name"`
	Main                 string            `json:"main"`
	Module               string            `json:"module"`
	Type                 string            `json:"type"`
	Scripts              map[string]string `json:"scripts"`
	Dependencies         map[string]string `json:"dependencies"`
	DevDependencies      map[string]string `json:"devDependencies"`
	OptionalDependencies map[string]string `json:"optionalDependencies"`
	PeerDependencies     map[string]string `json:"peerDependencies"`
	Overrides            json.RawMessage   `json:"overrides"`
	Resolutions          json.RawMessage   `json:"resolutions"`
	Engines              struct {
		Node string `json:"node"`
	} `json:"engines"`
	PackageManager string          `json:"packageManager"`
	Workspaces     json.RawMessage `json:"workspaces"`
}

// Provider is the Node.js provider.
type Provider struct{}

var _ detect.Provider = Provider{}

func (Provider) Name() string { return "node" }
func (Provider) Hint() string { return "package.json or server.js (Node.js)" }

// bareEntries are the files a Node.js app without a package.json starts
// from (a single-file server that uses only Node's own modules).
var bareEntries = []string{"server.js", "index.js", "app.js", "main.js", "server.mjs", "index.mjs", "app.mjs"}

// pythonMarkers keep a Python project with a stray index.js Python's.
var pythonMarkers = []string{"requirements.txt", "pyproject.toml", "Pipfile", "setup.py"}

func (Provider) Detect(_ context.Context, src fs.FS) (bool, error) {
	if detect.Exists(src, "package.json") {
		return true, nil
	}
	for _, m := range pythonMarkers {
		if detect.Exists(src, m) {
			return false, nil
		}
	}
	for _, f := range bareEntries {
		if b, err := fs.ReadFile(src, f); err == nil && nodeCode.Match(b) {
			return true, nil
		}
	}
	return false, nil
}

// nodeCode tells a Node.js program from a browser script of the same
// name (a static site's main.js): it uses Node's own modules or process.
var nodeCode = regexp.MustCompile(`require\(\s*['"](node:)?[a-z_/]+['"]\s*\)|from\s+['"]node:|process\.(env|argv|exit|on)\b|\bcreateServer\(`)

// planBare plans a Node.js app with no package.json: no dependencies to
// install, the context shipped as is, started with node (or its Procfile).
func planBare(src fs.FS) (*plan.Plan, error) {
	st, ok, err := startCommand(src, &packageJSON{})
	if err != nil {
		return nil, err
	}
	if !ok {
		for _, f := range bareEntries {
			if b, err := fs.ReadFile(src, f); err == nil && nodeCode.Match(b) {
				st = start{argv: []string{"node", f}, source: f + " found"}
				ok = true
				break
			}
		}
	}
	if !ok {
		return nil, fmt.Errorf("no package.json and none of %s: nothing to start; add a package.json with a start script", strings.Join(bareEntries, ", "))
	}
	p := newPlan(DefaultMajor, AppDir)
	p.ToolchainChecks = nil // nothing is installed or compiled
	p.Evidence = []string{
		"no package.json: a Node.js app without dependencies (only Node's own modules)",
		fmt.Sprintf("Node.js %d (current LTS; add a package.json with engines.node to choose)", DefaultMajor),
		"start command from " + st.source,
	}
	p.Entrypoint = st.argv
	for k, v := range st.env {
		p.Env[k] = v
	}
	p.Env["HOST"] = "0.0.0.0"
	p.Layers = []plan.Layer{signalsLayer(), {Name: "app", From: plan.FromSource, Dest: AppDir}}
	return p, nil
}

func readPackageJSON(src fs.FS) (*packageJSON, error) {
	b, err := fs.ReadFile(src, "package.json")
	if err != nil {
		return nil, fmt.Errorf("reading package.json: %w", err)
	}
	var pkg packageJSON
	if err := json.Unmarshal(b, &pkg); err != nil {
		var se *json.SyntaxError
		if ok := asSyntax(err, &se); ok {
			line := 1 + strings.Count(string(b[:se.Offset]), "\n")
			return nil, fmt.Errorf("package.json:%d: invalid JSON: %v; fix it (npm install reports the same)", line, err)
		}
		return nil, fmt.Errorf("package.json: %v; fix it (npm install reports the same)", err)
	}
	return &pkg, nil
}

func asSyntax(err error, se **json.SyntaxError) bool {
	s, ok := err.(*json.SyntaxError)
	if ok {
		*se = s
	}
	return ok
}

// kind of app.
const (
	kindServer     = "server"
	kindNext       = "next"
	kindStandalone = "next-standalone"
	kindSPA        = "spa"
	kindExport     = "next-export"
)

var serverFrameworks = []string{"express", "fastify", "@nestjs/core", "koa", "hono", "@hono/node-server", "@hapi/hapi", "restify", "polka", "h3", "@adonisjs/core", "sails", "feathers", "@feathersjs/feathers", "nuxt", "@remix-run/serve", "@sveltejs/kit", "astro"}

func (Provider) Plan(_ context.Context, src fs.FS, opts detect.Options) (*plan.Plan, error) {
	if !detect.Exists(src, "package.json") {
		return planBare(src)
	}
	pkg, err := readPackageJSON(src)
	if err != nil {
		return nil, err
	}
	evidence := []string{"package.json found"}
	pm, pmEvidence, err := choosePackageManager(src, pkg, opts.AllowUnlocked)
	if err != nil {
		return nil, err
	}
	evidence = append(evidence, pmEvidence...)
	major, why := nodeMajor(src, pkg)
	evidence = append(evidence, why)

	// A workspace root that is the app itself: its packages' manifests
	// are install inputs too, and their node_modules are shipped.
	var wsRoot, wsInputs []string
	var wsKey string
	if pats := workspacePatterns(src, pkg); len(pats) > 0 {
		rootIsApp := pkg.Scripts["start"] != "" || pkg.Main != "" || pkg.Scripts["build"] != "" || bunEntry(src, pkg) != "" || detect.Exists(src, "server.js") || detect.Exists(src, "index.js")
		if opts.Target != "" || !rootIsApp {
			return planWorkspace(src, pkg, pm, evidence, major, pats, opts.Target)
		}
		evidence = append(evidence, "workspace root with its own start: building the root with every workspace package's production dependencies (pass --target DIR to build one package)")
		all, err := workspaces(src, pats)
		if err != nil {
			return nil, err
		}
		wsRoot = workspaceDirs(all)
		for _, d := range wsRoot {
			wsInputs = append(wsInputs, path.Join(d, "package.json"))
			wsKey += " " + d + ":" + strings.TrimPrefix(dependencyKey(all[d].pkg), "package.json dependencies ")
		}
	}

	deps := func(name string) bool { _, ok := pkg.Dependencies[name]; return ok }
	hasServer := false
	for _, f := range serverFrameworks {
		if deps(f) {
			hasServer = true
		}
	}
	buildScript := pkg.Scripts["build"]
	kind := kindServer
	switch {
	case deps("next"):
		kind = kindNext
		switch nextOutput(src) {
		case "standalone":
			kind = kindStandalone
		case "export":
			kind = kindExport
		}
	case !hasServer && isSPA(pkg):
		kind = kindSPA
	}

	p := newPlan(major, AppDir)
	askNode(p, src, pkg)
	for _, m := range nativeModules {
		if deps(m.Name) {
			evidence = append(evidence, p.AddNativeModule(m))
		}
	}
	if pm.PnP {
		// The user's own PnP files never ship from the context: the
		// install's do, matching the lockfile.
		p.Exclude = append(p.Exclude, ".pnp.cjs", ".pnp.loader.mjs", ".pnp.data.json", ".yarn/unplugged", ".yarn/install-state.gz")
		opts := p.Env["NODE_OPTIONS"] + " --require=" + AppDir + "/.pnp.cjs"
		if pkg.Type == "module" {
			opts += " --experimental-loader=" + AppDir + "/.pnp.loader.mjs"
		}
		p.Env["NODE_OPTIONS"] = opts
	}
	depKey := dependencyKey(pkg)
	depKey += wsKey
	installProd := plan.Step{
		Name: "deps", Run: pm.installProd(), Inputs: append(installInputs(src), wsInputs...), Reads: []string{"package.json"}, Key: depKey,
		Env: pm.installEnv(), NativeCheck: true, Hint: pm.hint(),
		Toolchain: toolchain, Errors: gypErrors,
	}
	// The build needs every dependency (dev included): a step of its own,
	// cached like the production install, whose node_modules is kept in the
	// cache only and put back for the build when the install is skipped.
	devDeps := plan.Step{
		Name: "devdeps", Run: []string{"sh", "-c", pm.installAll()}, Inputs: append(installInputs(src), wsInputs...), Reads: []string{"package.json"}, Key: depKey,
		Hint: pm.hint(), Toolchain: toolchain, Errors: gypErrors,
	}
	devLayer := plan.Layer{Name: "devdeps", From: "devdeps", Include: pm.modules(), Dest: AppDir, CacheOnly: true}
	buildStep := func() plan.Step {
		return plan.Step{
			Name: "build", Run: []string{"sh", "-c", pm.run("build")}, Needs: []string{"devdeps"},
			Hint: "the build script failed; run it locally (" + pm.run("build") + ") to see why", Toolchain: toolchain,
		}
	}
	signals := signalsLayer()

	switch kind {
	case kindSPA:
		out := spaOutput(pkg)
		evidence = append(evidence, fmt.Sprintf("single-page app (build script, %s, no server framework): shipping %s/ with a static file server, no node_modules", spaTool(pkg), out))
		p.Steps = []plan.Step{devDeps, buildStep()}
		p.Layers = []plan.Layer{
			signals, devLayer,
			{Name: "server", From: plan.FromInline, Dest: AppDir, Files: map[string]string{"server.js": serverJS}},
			{Name: "static", From: "build", Root: out, Dest: AppDir + "/public"},
		}
		p.Entrypoint = []string{"node", AppDir + "/server.js"}
		p.Env["HOST"] = "0.0.0.0"
	case kindExport:
		evidence = append(evidence, "Next.js with output: 'export' (a static export): shipping out/ with packer's static file server (clean URLs, 404.html), no node_modules, no next start")
		p.Steps = []plan.Step{devDeps, buildStep()}
		p.Layers = []plan.Layer{
			signals, devLayer,
			{Name: "server", From: plan.FromInline, Dest: AppDir, Files: map[string]string{"server.js": serverJS}},
			{Name: "static", From: "build", Root: "out", Dest: AppDir + "/public"},
		}
		p.Entrypoint = []string{"node", AppDir + "/server.js"}
		p.Env["HOST"] = "0.0.0.0"
		p.Env["PACKER_STATIC"] = "site"
	case kindStandalone:
		evidence = append(evidence, "Next.js with output: 'standalone': shipping .next/standalone, .next/static and public only")
		p.Steps = []plan.Step{devDeps, buildStep()}
		p.Steps[1].NativeCheck = true
		p.Layers = []plan.Layer{
			signals, devLayer,
			{Name: "app", From: "build", Root: ".next/standalone", Dest: AppDir},
			{Name: "static", From: "build", Root: ".next/static", Dest: AppDir + "/.next/static"},
		}
		if detect.IsDir(src, "public") {
			p.Layers = append(p.Layers, plan.Layer{Name: "public", From: plan.FromSource, Include: []string{"public"}, Dest: AppDir})
		}
		p.Entrypoint = []string{"node", "server.js"}
		p.Env["HOSTNAME"] = "0.0.0.0"
	case kindNext:
		evidence = append(evidence, "Next.js without standalone output: next start with production dependencies (add output: 'standalone' to next.config for a smaller image)")
		p.Steps = []plan.Step{installProd, devDeps, buildStep()}
		p.Layers = []plan.Layer{
			signals, devLayer,
			{Name: "deps", From: "deps", Include: pm.modules(), Dest: AppDir},
			{Name: "app", From: "build", Dest: AppDir, Exclude: append(pm.modules(), ".next/cache")},
		}
		p.Entrypoint = []string{"node_modules/.bin/next", "start"}
		p.Env["HOSTNAME"] = "0.0.0.0"
	default:
		st, ok, err := startCommand(src, pkg)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("no way to start the app: package.json has no start script (that runs without a dev tool) and no main, and there is no server.js, index.js or app.js; add \"start\": \"node server.js\" to scripts, or a Procfile with web: <command>")
		}
		evidence = append(evidence, "start command from "+st.source)
		p.Entrypoint = st.argv
		for k, v := range st.env {
			p.Env[k] = v
		}
		if st.dir != "" {
			// The start runs in a workspace package: there, with its own
			// and the root's binaries on PATH (as npm run would).
			p.WorkingDir = path.Join(AppDir, st.dir)
			p.Env["PATH"] = path.Join(AppDir, st.dir, "node_modules/.bin") + ":" + AppDir + "/node_modules/.bin:" + defaultPath
			evidence = append(evidence, "the start runs in "+st.dir+", with its node_modules/.bin and the root's on PATH")
		}
		p.Env["HOST"] = "0.0.0.0"
		if deps("fastify-cli") || strings.Contains(strings.Join(st.argv, " "), "fastify") {
			p.Env["FASTIFY_ADDRESS"] = "0.0.0.0"
		}
		p.Layers = []plan.Layer{signals}
		if len(pkg.Dependencies)+len(pkg.OptionalDependencies) > 0 || len(wsRoot) > 0 {
			p.Steps = []plan.Step{installProd}
			modules := append(pm.modules(), wsModules(wsRoot)...)
			p.Layers = append(p.Layers, plan.Layer{Name: "deps", From: "deps", Include: modules, Dest: AppDir})
		} else {
			evidence = append(evidence, "no production dependencies: no dependency layer")
		}
		if buildScript != "" {
			evidence = append(evidence, "build script: "+buildScript)
			p.Steps = append(p.Steps, devDeps, buildStep())
			app := plan.Layer{Name: "app", From: "build", Dest: AppDir, Exclude: pm.modules()}
			if len(wsRoot) > 0 {
				// Every workspace package's dev dependencies and build
				// caches stay out; their production ones are in deps.
				app.Exclude = append(app.Exclude, "**/node_modules", "**/.next/cache", ".turbo", "**/.turbo")
				devLayer.Include = append(devLayer.Include, wsModules(wsRoot)...)
			}
			if out := compiledFrom(src, st.argv); out != "" {
				evidence = append(evidence, "the app starts from "+out+"/, compiled from TypeScript: the .ts sources are not shipped")
				app.Exclude = append(app.Exclude, "**/*.ts", "**/*.tsx", "**/*.mts", "**/*.cts", "**/*.tsbuildinfo")
			}
			p.Layers = append(p.Layers, devLayer, app)
		} else {
			p.Layers = append(p.Layers, plan.Layer{Name: "app", From: plan.FromSource, Dest: AppDir})
		}
		if len(st.argv) == 3 && st.argv[0] == "sh" {
			evidence = append(evidence, shellPM(p, pm, st.argv[2])...)
		}
	}
	if len(p.Entrypoint) > 0 && p.Entrypoint[0] == "bun" {
		evidence = useBun(p, pkg, evidence, why)
	}
	p.Evidence = evidence
	return p, nil
}

// planWorkspace plans one package of a monorepo: its dependencies
// installed from the root lockfile (npm --workspace, pnpm --filter), and
// only it and the workspace packages it depends on shipped.
func planWorkspace(src fs.FS, root *packageJSON, pm *packageManager, evidence []string, major int, pats []string, target string) (*plan.Plan, error) {
	if pm.PnP {
		return nil, fmt.Errorf("a yarn Plug'n'Play workspace is not supported yet (single apps are); add `nodeLinker: node-modules` to .yarnrc.yml and run yarn install")
	}
	all, err := workspaces(src, pats)
	if err != nil {
		return nil, err
	}
	if target == "" {
		return nil, &detect.NeedTargetError{What: "package", Why: "this is a workspace monorepo", Choices: workspaceDirs(all)}
	}
	dir := path.Clean(strings.TrimPrefix(target, "./"))
	app, ok := all[dir]
	if !ok {
		return nil, &detect.BadTargetError{Target: target, Reason: "is not a package of this workspace", Choices: workspaceDirs(all)}
	}
	local := closure(app, all)
	evidence = append(evidence, fmt.Sprintf("workspace monorepo: building %s (%s)", dir, app.pkg.Name))
	if len(local) > 0 {
		evidence = append(evidence, "workspace packages it depends on, shipped with it: "+strings.Join(local, ", "))
	}
	sub, err := fs.Sub(src, dir)
	if err != nil {
		return nil, err
	}

	// Every workspace's package.json decides what the root lockfile
	// installs: all of them are inputs and part of the key.
	inputs := installInputs(src)
	key := dependencyKey(root)
	var wsDirs []string
	for d := range all {
		wsDirs = append(wsDirs, d)
	}
	sort.Strings(wsDirs)
	modules := []string{"node_modules"}
	for _, d := range wsDirs {
		inputs = append(inputs, path.Join(d, "package.json"))
		key += " " + d + ":" + strings.TrimPrefix(dependencyKey(all[d].pkg), "package.json dependencies ")
		modules = append(modules, d+"/node_modules")
	}
	// A build runs with every workspace's dependencies, dev included,
	// installed by a cached cache-only step (as for a single app).
	devDeps := plan.Step{
		Name: "devdeps", Run: []string{"sh", "-c", pm.installAll()}, Inputs: inputs, Reads: []string{"package.json"}, Key: key,
		Hint: pm.hint(), Toolchain: toolchain,
	}
	focus := strings.Join(append(append([]string{}, local...), dir), " ")
	if pm.Name == "yarn" && pm.Lockfile != "" {
		// yarn 1's --frozen-lockfile is not enforced in workspaces.
		devDeps.Run, devDeps.Files = yarn1Focus(focus, false)
	}
	devLayer := plan.Layer{Name: "devdeps", From: "devdeps", Include: modules, Dest: AppDir, CacheOnly: true}
	buildStep := plan.Step{Name: "build", Run: []string{"sh", "-c", workspaceBuild(pm, local, dir)}, Needs: []string{"devdeps"},
		Toolchain: toolchain, Hint: "the build script failed; run it locally to see why"}

	if _, next := app.pkg.Dependencies["next"]; next {
		if !standalone(sub) {
			return nil, fmt.Errorf("--target %s is a Next.js app without output: 'standalone'; add output: 'standalone' to %s/next.config (packer ships a monorepo's Next.js app from its standalone output)", target, dir)
		}
		evidence = append(evidence, "Next.js with output: 'standalone': shipping "+dir+"/.next/standalone (traced from the workspace root), its .next/static and public only")
		p := newPlan(major, AppDir+"/"+dir)
		askNode(p, src, root)
		buildStep.NativeCheck = true
		p.Steps = []plan.Step{devDeps, buildStep}
		p.Layers = []plan.Layer{
			signalsLayer(), devLayer,
			{Name: "app", From: "build", Root: dir + "/.next/standalone", Dest: AppDir},
			{Name: "static", From: "build", Root: dir + "/.next/static", Dest: AppDir + "/" + dir + "/.next/static"},
		}
		if detect.IsDir(sub, "public") {
			p.Layers = append(p.Layers, plan.Layer{Name: "public", From: plan.FromSource, Include: []string{dir + "/public"}, Dest: AppDir})
		}
		p.Entrypoint = []string{"node", "server.js"}
		p.Env["HOSTNAME"] = "0.0.0.0"
		p.Evidence = evidence
		return p, nil
	}

	server := false
	for _, f := range serverFrameworks {
		if _, ok := app.pkg.Dependencies[f]; ok {
			server = true
		}
	}
	if !server && isSPA(app.pkg) {
		out := spaOutput(app.pkg)
		evidence = append(evidence, fmt.Sprintf("single-page app (build script, %s, no server framework): shipping %s/%s/ with a static file server, no node_modules", spaTool(app.pkg), dir, out))
		p := newPlan(major, AppDir)
		askNode(p, src, root)
		p.Steps = []plan.Step{devDeps, buildStep}
		p.Layers = []plan.Layer{
			signalsLayer(), devLayer,
			{Name: "server", From: plan.FromInline, Dest: AppDir, Files: map[string]string{"server.js": serverJS}},
			{Name: "static", From: "build", Root: dir + "/" + out, Dest: AppDir + "/public"},
		}
		p.Entrypoint = []string{"node", AppDir + "/server.js"}
		p.Env["HOST"] = "0.0.0.0"
		p.Evidence = evidence
		return p, nil
	}

	st, ok, err := startCommand(sub, app.pkg)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no way to start %s: add \"start\": \"node server.js\" to its package.json scripts", dir)
	}
	if strings.HasPrefix(st.argv[0], "node_modules/.bin/") {
		st.argv[0] = AppDir + "/" + st.argv[0] // hoisted to the workspace root
	}
	evidence = append(evidence, "start command from "+st.source)

	install := pm.installProd()
	var files map[string]string
	switch pm.Name {
	case "npm":
		install = append(install, "--workspace", dir)
	case "pnpm":
		// {DIR}...: the package and the workspace packages it depends
		// on (pnpm reads ./DIR... as a path, without its dependencies).
		install = append(install, "--filter", "{./"+dir+"}...")
	case "bun":
		install = append(install, "--filter", "./"+dir)
	case "yarn-berry":
		if app.pkg.Name == "" {
			return nil, fmt.Errorf("%s/package.json has no name; yarn installs one workspace by its name: add \"name\"", dir)
		}
		// workspaces focus NAME (not --all): that workspace and the ones
		// it depends on.
		install = pm.berryFocus(app.pkg.Name)
	case "yarn":
		if pm.Lockfile != "" {
			install, files = yarn1Focus(focus, true)
			evidence = append(evidence, "yarn 1 installs the workspaces "+focus+" only; yarn.lock is checked after the install (yarn 1's --frozen-lockfile is not enforced in workspaces)")
		}
	}
	p := newPlan(major, AppDir+"/"+dir)
	askNode(p, src, root)
	p.Env["HOST"] = "0.0.0.0"
	p.Entrypoint = st.argv
	p.Steps = []plan.Step{{
		Name: "deps", Run: install, Inputs: inputs, Reads: []string{"package.json"}, Key: key, Env: pm.installEnv(), Files: files,
		NativeCheck: true, Hint: pm.hint(), Toolchain: toolchain,
	}}
	p.Layers = []plan.Layer{
		signalsLayer(),
		{Name: "deps", From: "deps", Include: shippedModules(dir, local), Dest: AppDir},
	}
	for k, v := range st.env {
		p.Env[k] = v
	}
	ship := append(append([]string{"package.json"}, local...), dir)
	if app.pkg.Scripts["build"] != "" {
		evidence = append(evidence, "build script in "+dir+": "+app.pkg.Scripts["build"])
		p.Steps = append(p.Steps, devDeps, buildStep)
		p.Layers = append(p.Layers, devLayer, plan.Layer{Name: "app", From: "build", Include: ship, Exclude: []string{"node_modules", "**/node_modules"}, Dest: AppDir})
	} else {
		p.Layers = append(p.Layers, plan.Layer{Name: "app", From: plan.FromSource, Include: ship, Dest: AppDir})
	}
	p.Evidence = evidence
	return p, nil
}

// isSPA: a build script, a single-page-app tool, and no production start
// command (a dev server does not count). Server frameworks are checked by
// the caller.
func isSPA(pkg *packageJSON) bool {
	anyDep := func(name string) bool {
		_, d := pkg.Dependencies[name]
		_, dd := pkg.DevDependencies[name]
		return d || dd
	}
	return pkg.Scripts["build"] != "" &&
		(anyDep("vite") || anyDep("react-scripts") || anyDep("@vue/cli-service") || anyDep("@angular/core") || anyDep("parcel")) &&
		(pkg.Scripts["start"] == "" || isDev(pkg.Scripts["start"]))
}

// yarn1Focus installs the yarn 1 workspaces dirs (space separated), and
// fails when yarn had to add to yarn.lock: see yarn1FocusJS.
func yarn1Focus(dirs string, production bool) ([]string, map[string]string) {
	flags := "--non-interactive"
	if production {
		flags = "--production " + flags
	}
	return []string{"sh", "-c", "node .packer/yarn1-focus.js before " + dirs + " && corepack yarn install " + flags + " && node .packer/yarn1-focus.js after"},
		map[string]string{".packer/yarn1-focus.js": yarn1FocusJS}
}

// pmInShell finds a package manager called from a shell start script.
var pmInShell = regexp.MustCompile(`(^|[\s;&|(])(npm|npx|pnpm|yarn|bun)(\s|$)`)

// shellPM: a start that calls pnpm or yarn through the shell (`pnpm run
// migrate && node server.js`) gets the project's own package manager in
// the image, on PATH (p gains the step and the layer); npm is in node
// images already; any other is a warning in the plan.
func shellPM(p *plan.Plan, pm *packageManager, script string) []string {
	var evidence []string
	warned := map[string]bool{}
	for _, m := range pmInShell.FindAllStringSubmatch(script, -1) {
		called := m[2]
		name, spec, _, shippable := pm.runtimeCLI()
		switch {
		case called == "npm" || called == "npx" || warned[called]:
			continue
		case shippable && called == name:
			if slices.ContainsFunc(p.Steps, func(s plan.Step) bool { return s.Name == "pm" }) {
				continue
			}
			step, layer, _ := pm.shipCLI()
			// Below the app layer, which changes most.
			p.Steps = append(p.Steps, step)
			p.Layers = slices.Insert(p.Layers, len(p.Layers)-1, layer)
			p.Env["PATH"] = PMDir + "/bin:" + orDefault(p.Env["PATH"], defaultPath)
			evidence = append(evidence, "the start command calls "+called+" through the shell: "+spec+" (this project's) ships in "+PMDir+", on PATH")
		default:
			warned[called] = true
			evidence = append(evidence, "warning: the start command calls "+called+" through the shell ("+script+"), which this project does not install with and the image lacks; make the start run node directly, or use a Procfile web: line")
		}
	}
	return evidence
}

// wsModules are the node_modules directories of workspace packages.
func wsModules(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		out = append(out, d+"/node_modules")
	}
	return out
}

// shippedModules are the node_modules directories a workspace package
// needs at run time: the root's, its own, and those of the workspace
// packages it uses (pnpm links each package's dependencies from its own
// node_modules into the root's .pnpm store).
func shippedModules(dir string, local []string) []string {
	out := []string{"node_modules", dir + "/node_modules"}
	for _, d := range local {
		out = append(out, d+"/node_modules")
	}
	return out
}

// workspaceBuild runs the build script of the workspace package in dir
// and of the workspace packages it uses (local) that have one.
func workspaceBuild(pm *packageManager, local []string, dir string) string {
	switch pm.Name {
	case "npm":
		ws := ""
		for _, d := range append(append([]string{}, local...), dir) {
			ws += " -w " + d
		}
		return "npm run build --if-present" + ws
	case "pnpm":
		return strings.Join(pm.cli(), " ") + " --filter '{./" + dir + "}...' run build"
	}
	return "cd " + dir + " && " + pm.run("build")
}

// newPlan is what every Node.js image shares: the base for the major,
// node_modules and tool caches left out of the context, non-root, port
// 8080, production mode, the SIGTERM preload and tini when the base has it.
func newPlan(major int, workdir string) *plan.Plan {
	return &plan.Plan{
		Provider:     "node",
		Base:         fmt.Sprintf("node:%d-slim", major),
		Exclude:      []string{"node_modules", "**/node_modules", ".next", ".npm", ".yarn/cache", ".pnpm-store", "npm-debug.log*"},
		WorkingDir:   workdir,
		User:         plan.NonRootUser,
		Ports:        []int{8080},
		Env:          map[string]string{"NODE_ENV": "production", "PORT": "8080", "NODE_OPTIONS": "--require=/opt/packer/signals.js"},
		Runtime:      map[string]string{"node": strconv.Itoa(major)},
		BaseRuntimes: []plan.BaseRuntime{{Name: "Node.js", Want: strconv.Itoa(major), Env: "NODE_VERSION", Dpkg: "nodejs", Host: []string{"node", "--version"}}},
		ToolchainChecks: []plan.ToolchainCheck{{
			Pattern: `^v(\d+)\.`, Want: strconv.Itoa(major),
			Message: "this machine has Node.js ${have} but the image runs Node.js ${want}: native addons compiled here are built for Node.js ${have}'s ABI and may fail to load; use Node.js ${want} here (or set engines.node / .nvmrc to ${have})",
		}},
		Init: true,
	}
}

// gypErrors name what node-gyp lacked to compile an addon (a -slim base
// has no compiler).
var gypErrors = []plan.ErrorHint{
	{Pattern: `gyp ERR! stack Error: not found: (make|g\+\+|cc|gcc)`, Message: "node-gyp needs $1 to compile a native addon: add build = [\"build-essential\", \"python3\"] to packer.toml's [system] table (or --system-build build-essential,python3), or use a base that has a compiler"},
	{Pattern: `gyp ERR! find Python`, Message: "node-gyp needs Python to compile a native addon: add build = [\"python3\"] to packer.toml's [system] table (or --system-build python3), or use a base that has it"},
}

// nativeModules are the npm packages whose install compiles against
// system libraries when no prebuilt binary is downloaded (canvas's
// prebuilds come from GitHub releases; a source build needs cairo and
// pango). sharp and bcrypt need none: they ship prebuilt binaries in
// npm packages. Debian package names, the default bases' distribution.
var nativeModules = []plan.NativeModule{
	{Name: "canvas",
		Build: []string{"build-essential", "python3", "pkg-config", "libcairo2-dev", "libpango1.0-dev", "libjpeg-dev", "libgif-dev", "librsvg2-dev"},
		Run:   []string{"libcairo2", "libpango-1.0-0", "libpangocairo-1.0-0", "libjpeg62-turbo", "libgif7", "librsvg2-2"}},
}

// StaticServer returns a plan that serves the files a layer puts in
// /app/public with packer's static file server on Node.js major, for a
// provider that has files to serve and no server of its own (a static
// site): the server and signal layers, the entrypoint and environment.
// The caller adds the files' layer and its evidence.
func StaticServer(major int, site bool) *plan.Plan {
	p := newPlan(major, AppDir)
	p.ToolchainChecks = nil // no steps: nothing is compiled here
	p.Layers = []plan.Layer{
		signalsLayer(),
		{Name: "server", From: plan.FromInline, Dest: AppDir, Files: map[string]string{"server.js": serverJS}},
	}
	p.Entrypoint = []string{"node", AppDir + "/server.js"}
	p.Env["HOST"] = "0.0.0.0"
	if site {
		p.Env["PACKER_STATIC"] = "site"
	}
	return p
}

// signalsLayer holds the preload NODE_OPTIONS names.
func signalsLayer() plan.Layer {
	return plan.Layer{Name: "packer", From: plan.FromInline, Dest: "/opt/packer", Files: map[string]string{"signals.js": signalsJS}}
}

// toolchain prints Node.js's and npm's versions: both are part of every
// step's cache key (pnpm's and yarn's come from packageManager, in the
// dependency key). Build warns when Node.js's major differs from the
// image's. npm's version is read from the package.json beside its CLI
// (what `npm --version` prints, without npm's ~0.1 s start-up on every
// build), falling back to running it.
var toolchain = []string{"sh", "-c", `node --version && { v=$(sed -n 's/^  "version": "\([^"]*\)",\{0,1\}$/\1/p' "$(dirname "$(readlink -f "$(command -v npm)")")/../package.json" 2>/dev/null | head -1); [ -n "$v" ] && echo "$v" || npm --version 2>/dev/null || true; }`}

// dependencyKey digests the package.json fields that decide what gets
// installed, so a change to scripts or version does not reinstall.
func dependencyKey(pkg *packageJSON) string {
	b, _ := json.Marshal(struct {
		D, DD, OD, PD        map[string]string
		Overrides, Resolvers json.RawMessage
		PM                   string
		Workspaces           json.RawMessage
	}{pkg.Dependencies, pkg.DevDependencies, pkg.OptionalDependencies, pkg.PeerDependencies, pkg.Overrides, pkg.Resolutions, pkg.PackageManager, pkg.Workspaces})
	h := sha256.Sum256(b)
	return "package.json dependencies sha256:" + hex.EncodeToString(h[:])
}

// installInputs are the files an install depends on besides package.json's
// dependency fields.
func installInputs(src fs.FS) []string {
	var in []string
	for _, f := range []string{"package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "yarn.lock", "bun.lock", "bun.lockb", ".npmrc", ".yarnrc", ".yarnrc.yml", "pnpm-workspace.yaml", ".pnpmfile.cjs", "patches"} {
		if detect.Exists(src, f) {
			in = append(in, f)
		}
	}
	if len(in) == 0 {
		return []string{"package.json"}
	}
	return in
}

var nextOutputRe = regexp.MustCompile(`output\s*:\s*["'` + "`" + `](standalone|export)["'` + "`" + `]`)

// nextOutput is next.config's output setting: "standalone", "export",
// or "" (next start).
func nextOutput(src fs.FS) string {
	for _, f := range []string{"next.config.js", "next.config.mjs", "next.config.ts", "next.config.cjs"} {
		if b, err := fs.ReadFile(src, f); err == nil {
			if m := nextOutputRe.FindSubmatch(b); m != nil {
				return string(m[1])
			}
		}
	}
	return ""
}

func standalone(src fs.FS) bool { return nextOutput(src) == "standalone" }
func spaTool(pkg *packageJSON) string {
	for _, t := range []string{"vite", "react-scripts", "@vue/cli-service", "@angular/core", "parcel"} {
		if _, ok := pkg.DevDependencies[t]; ok {
			return t
		}
		if _, ok := pkg.Dependencies[t]; ok {
			return t
		}
	}
	return "a bundler"
}

func spaOutput(pkg *packageJSON) string {
	switch spaTool(pkg) {
	case "react-scripts":
		return "build"
	}
	return "dist"
}

var majorRe = regexp.MustCompile(`\d+`)

// Majors are the Node.js release lines packer picks from for an
// engines.node range, after DefaultMajor: the newer ones first (closest
// first), then the older ones (closest first).
var Majors = []int{24, 26, 20, 18, 16, 14}

// enginesMajor evaluates an engines.node range (npm's semver syntax:
// "20.x", ">=18 <21", "^18 || ^20") with a semver library and picks the
// release line: the current LTS when it satisfies the range, else the
// closest line that does.
func enginesMajor(e string) (int, string) {
	c, err := semver.NewConstraint(e)
	if err != nil {
		return DefaultMajor, fmt.Sprintf("engines.node %q is not a semver range (%v): Node.js %d (current LTS)", e, err, DefaultMajor)
	}
	satisfies := func(major int) bool {
		for minor := 0; minor <= 40; minor++ {
			for _, patch := range []int{0, 99} {
				if c.Check(semver.New(uint64(major), uint64(minor), uint64(patch), "", "")) {
					return true
				}
			}
		}
		return false
	}
	if satisfies(DefaultMajor) {
		return DefaultMajor, fmt.Sprintf("engines.node %q: Node.js %d (the current LTS satisfies it)", e, DefaultMajor)
	}
	for _, n := range Majors {
		if satisfies(n) {
			return n, fmt.Sprintf("engines.node %q: Node.js %d", e, n)
		}
	}
	return DefaultMajor, fmt.Sprintf("engines.node %q: no Node.js release line satisfies it; Node.js %d (current LTS)", e, DefaultMajor)
}

// askNode records what the app asked of Node.js (.nvmrc, .node-version or
// engines.node), which the base's Node.js must satisfy.
func askNode(p *plan.Plan, src fs.FS, pkg *packageJSON) {
	for _, f := range []string{".nvmrc", ".node-version"} {
		if b, err := fs.ReadFile(src, f); err == nil {
			v := strings.TrimPrefix(strings.TrimSpace(string(b)), "v")
			if m := majorRe.FindString(v); m != "" && !strings.HasPrefix(v, "lts") {
				p.BaseRuntimes[0].Range, p.BaseRuntimes[0].Asked = m+".x", f+" says "+strings.TrimSpace(string(b))
				return
			}
		}
	}
	if e := strings.TrimSpace(pkg.Engines.Node); e != "" {
		if _, err := semver.NewConstraint(e); err == nil {
			p.BaseRuntimes[0].Range, p.BaseRuntimes[0].Asked = e, fmt.Sprintf("engines.node is %q", e)
		}
	}
}

// nodeMajor picks the Node.js major from .nvmrc, .node-version or
// engines.node.
func nodeMajor(src fs.FS, pkg *packageJSON) (int, string) {
	for _, f := range []string{".nvmrc", ".node-version"} {
		if b, err := fs.ReadFile(src, f); err == nil {
			v := strings.TrimPrefix(strings.TrimSpace(string(b)), "v")
			if m := majorRe.FindString(v); m != "" && !strings.HasPrefix(v, "lts") {
				n, _ := strconv.Atoi(m)
				return n, fmt.Sprintf("%s says %s: Node.js %d", f, strings.TrimSpace(string(b)), n)
			}
		}
	}
	if e := strings.TrimSpace(pkg.Engines.Node); e != "" {
		return enginesMajor(e)
	}
	return DefaultMajor, fmt.Sprintf("no engines.node, .nvmrc or .node-version: Node.js %d (current LTS)", DefaultMajor)
}

// compiledFrom returns the output directory (dist, build, out, lib) the
// start command runs a file from when the app is TypeScript compiled by
// its build (a tsconfig.json), or "".
func compiledFrom(src fs.FS, argv []string) string {
	if !detect.Exists(src, "tsconfig.json") || len(argv) < 2 || argv[0] != "node" {
		return ""
	}
	for _, a := range argv[1:] {
		if strings.HasPrefix(a, "-") {
			continue
		}
		dir, _, ok := strings.Cut(path.Clean(a), "/")
		if ok && (dir == "dist" || dir == "build" || dir == "out" || dir == "lib") {
			return dir
		}
		return ""
	}
	return ""
}
