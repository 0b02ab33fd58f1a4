// Package golang plans images for Go modules: a static binary built with the
// host's go toolchain (CGO_ENABLED=0, GOOS/GOARCH per platform) on a minimal
// base packer assembles itself.
package golang

import (
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"path"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"

	"github.com/packer-build/packer/config"
	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/plan"
)

// CgoBase is the default base of a cgo build: Debian 13's glibc (2.41)
// is newer than most CI runners' (Ubuntu 24.04: 2.39), so binaries they
// link run on it.
const CgoBase = "debian:trixie-slim"

// RuntimeDirs are directories a Go program commonly reads at run time; when
// present they are shipped next to the binary.
var RuntimeDirs = []string{"templates", "static", "public", "assets"}

// AppDir is where the binary and runtime directories land in the image.
const AppDir = plan.AppDir

// Provider is the Go provider.
type Provider struct{}

var _ detect.Provider = Provider{}

func (Provider) Name() string { return "golang" }
func (Provider) Hint() string { return "go.mod (Go)" }

func (Provider) Detect(_ context.Context, src fs.FS) (bool, error) {
	if detect.Exists(src, "go.mod") || detect.Exists(src, "go.work") {
		return true, nil
	}
	// A main.go with no go.mod (a buildpack sample's `web: go run
	// main.go`), unless another language owns the directory.
	if detect.Exists(src, "package.json") {
		return false, nil
	}
	ok, err := isMain(src, ".")
	return ok && detect.Exists(src, "main.go"), err
}

// bareModule is the go.mod packer writes into the staging copy (never the
// user's directory) for a main.go without one.
const bareModule = "module app\n\ngo 1.22\n"

func (Provider) Plan(_ context.Context, src fs.FS, opts detect.Options) (*plan.Plan, error) {
	// A go.work without a go.mod at the top: build one of its modules,
	// from the top (the workspace resolves the others).
	root := src
	modDir, workWhy, inModule, err := workModule(src, opts.Target)
	if err != nil {
		return nil, err
	}
	if modDir != "." {
		if src, err = fs.Sub(root, modDir); err != nil {
			return nil, err
		}
		opts.Target = inModule
	}
	raw, err := fs.ReadFile(src, "go.mod")
	bare := errors.Is(err, fs.ErrNotExist) && modDir == "."
	if bare {
		if ok, merr := isMain(src, "."); merr != nil || !ok {
			return nil, fmt.Errorf("no go.mod and no main package at the top of the app; run go mod init NAME")
		}
		raw, err = []byte(bareModule), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading go.mod: %w", err)
	}
	mf, err := modfile.ParseLax("go.mod", raw, nil)
	if err != nil {
		return nil, fmt.Errorf("parsing go.mod: %w; fix it (go mod tidy reports the same problem)", err)
	}
	if mf.Module == nil || mf.Module.Mod.Path == "" {
		return nil, fmt.Errorf("go.mod has no module line; add `module NAME` (go mod init NAME)")
	}
	modPath := mf.Module.Mod.Path
	evidence := []string{"go.mod found: module " + modPath}
	if workWhy != "" {
		evidence = []string{workWhy, "go.mod found in " + modDir + ": module " + modPath}
	}
	if bare {
		evidence = []string{"no go.mod: main.go is built as module " + modPath + ", with the standard library only (go.mod written in the staging copy; go mod init NAME to choose)"}
	}
	if mf.Go != nil && !bare {
		evidence = append(evidence, "go.mod asks for go "+mf.Go.Version)
	}

	target := opts.Target
	proc, err := procfileWeb(src)
	if err != nil {
		return nil, err
	}
	if proc != nil && target == "" {
		// The Procfile names the binary: build the main package of that
		// name (Heroku's Go buildpack installs each main as bin/NAME).
		all, err := allMains(src)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, d := range all {
			if binaryName(modPath, d) == proc[0] {
				target = pkgArg(d)
			}
			names = append(names, binaryName(modPath, d))
		}
		if target == "" {
			return nil, fmt.Errorf("Procfile web: runs %s, which is none of this module's main packages (%s); name one of them, or remove the Procfile", proc[0], strings.Join(names, ", "))
		}
	}
	pkg, err := mainPackage(src, modPath, target)
	if err != nil {
		return nil, err
	}
	evidence = append(evidence, fmt.Sprintf("main package %s", pkg))
	name := binaryName(modPath, pkg)

	g := opts.Go
	args := []string{"go", "build", "-trimpath", "-buildvcs=false", "-ldflags=" + strings.Join(append([]string{"-s", "-w"}, g.Ldflags...), " ")}
	if len(g.Tags) > 0 {
		args = append(args, "-tags="+strings.Join(g.Tags, ","))
	}
	args = append(args, g.Flags...)
	if len(g.Ldflags)+len(g.Tags)+len(g.Flags)+len(g.Env) > 0 {
		evidence = append(evidence, "packer.toml [go]: ldflags, tags, flags and env added to go build")
	}
	if detect.Exists(src, "vendor/modules.txt") {
		args = append(args, "-mod=vendor")
		evidence = append(evidence, "vendor/modules.txt found: building from vendor/")
	}
	buildPkg := pkg
	if modDir != "." {
		buildPkg = "./" + path.Join(modDir, strings.TrimPrefix(pkg, "./"))
	}
	args = append(args, "-o", ".packer-out/"+name, buildPkg)

	p := &plan.Plan{
		Provider: "golang",
		Base:     plan.BaseStatic,
		Steps: []plan.Step{{
			Name: "build",
			Run:  args,
			Env: map[string]string{
				"CGO_ENABLED": "0",
				"GOOS":        plan.TargetOS,
				"GOARCH":      plan.TargetArch,
			},
			Toolchain: []string{"go", "env", "GOVERSION", "GOFLAGS", "GOEXPERIMENT", "GOAMD64", "GOARM64"},
			Output:    ".packer-out",
		}},
		BuildImage: buildImage(mf, bare),
		Entrypoint: []string{path.Join(AppDir, name)},
		Env:        map[string]string{"PORT": "8080"},
		WorkingDir: AppDir,
		User:       plan.NonRootUser,
		Ports:      []int{8080},
	}
	for k, v := range g.Env {
		p.Steps[0].Env[k] = v
	}
	if g.Cgo {
		// The binary links against the C library of the machine that
		// builds it: the image needs one, the same or newer.
		p.Steps[0].Env["CGO_ENABLED"] = "1"
		p.Steps[0].Toolchain = append(p.Steps[0].Toolchain, "CC", "CGO_CFLAGS", "CGO_LDFLAGS")
		p.Base = CgoBase
		p.Runtime = map[string]string{"libc": "glibc"}
		evidence = append(evidence, "packer.toml [go] cgo = true: linked against this machine's C library (glibc), so the base must have glibc of the same version or newer: "+CgoBase+" (choose another with --base)")
	}
	if proc != nil && proc[0] == name {
		p.Entrypoint = append(p.Entrypoint, proc[1:]...)
		p.Env["PATH"] = AppDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		evidence = append(evidence, fmt.Sprintf("Procfile web: %s: the binary %s, on PATH in %s", strings.Join(proc, " "), name, AppDir))
	}
	if bare {
		p.Steps[0].Files = map[string]string{"go.mod": bareModule}
		p.Steps[0].Hint = "main.go has no go.mod, so packer built it with the standard library only; for other imports run go mod init NAME && go mod tidy and commit go.mod and go.sum"
	}
	var dirs []string
	for _, d := range RuntimeDirs {
		if detect.IsDir(src, d) {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) > 0 {
		evidence = append(evidence, "runtime directories shipped next to the binary: "+strings.Join(dirs, ", "))
		files := plan.Layer{Name: "files", From: plan.FromSource, Include: dirs, Dest: AppDir}
		if modDir != "." {
			files.Root = modDir
		}
		p.Layers = append(p.Layers, files)
	}
	p.Layers = append(p.Layers, plan.Layer{Name: "app", From: "build", Include: []string{name}, Dest: AppDir})
	p.Evidence = evidence
	return p, nil
}

// mainPackage picks the package to build: the target when given, else the
// only main package at the root or under cmd/, else the one named like the
// module.
func mainPackage(src fs.FS, modPath, target string) (string, error) {
	if target != "" {
		dir := path.Clean(strings.TrimPrefix(target, "./"))
		if strings.HasPrefix(dir, "..") || path.IsAbs(dir) {
			return "", fmt.Errorf("--target %q must be a directory inside the module, like ./cmd/NAME", target)
		}
		ok, err := isMain(src, dir)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("--target %q is not a main package (no non-test .go file there says `package main`)", target)
		}
		return pkgArg(dir), nil
	}
	var found []string
	if ok, err := isMain(src, "."); err != nil {
		return "", err
	} else if ok {
		found = append(found, ".")
	}
	if ents, err := fs.ReadDir(src, "cmd"); err == nil {
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			dir := "cmd/" + e.Name()
			ok, err := isMain(src, dir)
			if err != nil {
				return "", err
			}
			if ok {
				found = append(found, dir)
			}
		}
	}
	if len(found) == 0 {
		// Nothing where Go projects usually keep it: a main package
		// anywhere in the module is the one, when there is only one.
		all, err := allMains(src)
		if err != nil {
			return "", err
		}
		if len(all) == 0 {
			return "", fmt.Errorf("no main package in this module: no non-test .go file says `package main`; add one with func main")
		}
		found = all
	}
	if len(found) == 1 {
		return pkgArg(found[0]), nil
	}
	want := binaryName(modPath, ".")
	for _, d := range found {
		if binaryName(modPath, d) == want {
			return pkgArg(d), nil
		}
	}
	// Ambiguous: the choices are every main package in the module, nested
	// ones included (./cmd/tool/help is one too).
	all, err := allMains(src)
	if err != nil {
		return "", err
	}
	var choices []string
	for _, d := range all {
		choices = append(choices, pkgArg(d))
	}
	sort.Strings(choices)
	return "", &detect.NeedTargetError{What: "main package", Why: fmt.Sprintf("several main packages and none is named like the module (%s)", want), Choices: choices}
}

// workModule picks the module of a go.work to build when the top has no
// go.mod: the one target names (./api, or a package inside it, ./api/cmd/x,
// whose path inside the module is returned as the new target), else the
// only module with a main package. It returns "." when there is a go.mod
// at the top or no go.work.
func workModule(src fs.FS, target string) (dir, why, rest string, err error) {
	if detect.Exists(src, "go.mod") || !detect.Exists(src, "go.work") {
		return ".", "", target, nil
	}
	b, err := fs.ReadFile(src, "go.work")
	if err != nil {
		return "", "", "", err
	}
	wf, err := modfile.ParseWork("go.work", b, nil)
	if err != nil {
		return "", "", "", fmt.Errorf("parsing go.work: %w; fix it (go work sync reports the same problem)", err)
	}
	var mods []string
	for _, u := range wf.Use {
		if d := path.Clean(strings.TrimPrefix(u.Path, "./")); d != "." && detect.Exists(src, d+"/go.mod") {
			mods = append(mods, d)
		}
	}
	if len(mods) == 0 {
		return "", "", "", fmt.Errorf("go.work uses no module with a go.mod; add one with go work use DIR")
	}
	list := "./" + strings.Join(mods, ", ./")
	if target != "" {
		t := path.Clean(strings.TrimPrefix(target, "./"))
		for _, m := range mods {
			if t == m || strings.HasPrefix(t, m+"/") {
				r := strings.TrimPrefix(strings.TrimPrefix(t, m), "/")
				if r != "" {
					r = "./" + r
				}
				return m, fmt.Sprintf("go.work found: modules %s; building ./%s (the target)", list, m), r, nil
			}
		}
		return "", "", "", &detect.BadTargetError{Target: target, Reason: "is in none of go.work's modules", Choices: prefixed(mods)}
	}
	var withMain []string
	for _, m := range mods {
		sub, err := fs.Sub(src, m)
		if err != nil {
			return "", "", "", err
		}
		if all, err := allMains(sub); err == nil && len(all) > 0 {
			withMain = append(withMain, m)
		}
	}
	switch len(withMain) {
	case 0:
		return "", "", "", fmt.Errorf("none of go.work's modules (%s) has a main package", list)
	case 1:
		return withMain[0], fmt.Sprintf("go.work found: modules %s; building ./%s, the only one with a main package", list, withMain[0]), "", nil
	}
	return "", "", "", &detect.NeedTargetError{What: "module", Why: "go.work holds several modules with main packages", Choices: prefixed(withMain)}
}

func prefixed(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		out = append(out, "./"+d)
	}
	return out
}

// procfileWeb returns the Procfile's web: command as words, with its
// binary's name first (bin/NAME and ./NAME name the binary NAME); nil
// when there is no web: line, or it runs the go command (go run main.go:
// packer builds the binary instead).
func procfileWeb(src fs.FS) ([]string, error) {
	b, err := fs.ReadFile(src, "Procfile")
	if err != nil {
		return nil, nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != "web" {
			continue
		}
		v = strings.TrimSpace(v)
		if strings.ContainsAny(v, "&|;<>$`()") {
			return nil, fmt.Errorf("Procfile web: %s needs a shell, and a Go image has none; write the command without shell syntax (the app reads $PORT itself)", v)
		}
		w, err := config.SplitCommand(v)
		if err != nil {
			return nil, fmt.Errorf("Procfile: %w", err)
		}
		if w[0] == "go" {
			return nil, nil
		}
		w[0] = path.Base(w[0])
		return w, nil
	}
	return nil, nil
}

// allMains lists every main package of the module, skipping what the go
// command skips (testdata, vendor, directories starting with . or _) and
// nested modules.
func allMains(src fs.FS) ([]string, error) {
	var out []string
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		base := path.Base(p)
		if p != "." && (base == "testdata" || base == "vendor" || base == "node_modules" || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_")) {
			return fs.SkipDir
		}
		if p != "." && detect.Exists(src, p+"/go.mod") {
			return fs.SkipDir // another module
		}
		ok, err := isMain(src, p)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

func pkgArg(dir string) string {
	if dir == "." {
		return "."
	}
	return "./" + dir
}

// binaryName is the last element of the package's import path, without a
// major version suffix (example.com/app/v2 → app).
func binaryName(modPath, pkg string) string {
	full := path.Join(modPath, strings.TrimPrefix(pkg, "./"))
	if pre, _, ok := module.SplitPathVersion(full); ok && pre != "" {
		full = pre
	}
	return path.Base(full)
}

// isMain reports whether dir holds a non-test .go file in package main.
func isMain(src fs.FS, dir string) (bool, error) {
	ents, err := fs.ReadDir(src, dir)
	if err != nil {
		return false, nil
	}
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		b, err := fs.ReadFile(src, path.Join(dir, n))
		if err != nil {
			return false, fmt.Errorf("reading %s: %w", path.Join(dir, n), err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), n, b, parser.PackageClauseOnly)
		if err != nil {
			continue // a broken file is go build's to report
		}
		if f.Name.Name == "main" {
			return true, nil
		}
	}
	return false, nil
}

// buildImage is the official Go image remote engines build in: the
// go.mod's language version (major.minor; its toolchain line, if newer,
// is fetched by the go command itself, GOTOOLCHAIN=auto), "golang:1"
// without one.
func buildImage(mf *modfile.File, bare bool) string {
	if bare || mf == nil || mf.Go == nil {
		return "golang:1"
	}
	v := mf.Go.Version
	if parts := strings.SplitN(v, ".", 3); len(parts) >= 2 {
		v = parts[0] + "." + parts[1]
	}
	return "golang:" + v
}
