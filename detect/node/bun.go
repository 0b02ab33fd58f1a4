package node

import (
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/plan"
)

// bunMajor is the Bun major the default base carries.
const bunMajor = "1"

// tsExt are the files bun runs as they are and Node.js does not (without
// type stripping, which refuses most of what bun accepts: extensionless
// imports, enums, a workspace package's "module" entry).
var tsExt = []string{".ts", ".tsx", ".mts", ".cts"}

func isTS(f string) bool { return slices.Contains(tsExt, path.Ext(f)) }

// bunEntry is the TypeScript file a bun app starts from when no script
// says how: `bun init` writes "module": "index.ts" (Node.js ignores the
// field); a "main" naming a .ts file counts in a project bun installs.
func bunEntry(src fs.FS, pkg *packageJSON) string {
	if isTS(pkg.Module) && detect.Exists(src, pkg.Module) {
		return pkg.Module
	}
	bunProject := detect.Exists(src, "bun.lock") || detect.Exists(src, "bun.lockb") || strings.HasPrefix(pkg.PackageManager, "bun@")
	if bunProject && isTS(pkg.Main) && detect.Exists(src, pkg.Main) {
		return pkg.Main
	}
	return ""
}

func bunEntryField(pkg *packageJSON) string {
	if isTS(pkg.Module) {
		return "module"
	}
	return "main"
}

// bunRunsFile: the words are `bun [run] [flags] FILE ...` with FILE a
// script in dir (not a package.json script bun would run instead).
func bunRunsFile(src fs.FS, dir string, w []string) bool {
	args := w[1:]
	if len(args) > 0 && args[0] == "run" {
		args = args[1:]
	}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		args = args[1:]
	}
	if len(args) == 0 {
		return false
	}
	ext := path.Ext(args[0])
	return (isTS(args[0]) || slices.Contains([]string{".js", ".mjs", ".cjs", ".jsx"}, ext)) && detect.Exists(src, path.Join(dir, args[0]))
}

// bunToolchain prints bun's version: part of every step's cache key.
var bunToolchain = []string{"bun", "--version"}

// useBun turns a Node.js plan whose start runs bun into one whose image
// runs Bun: the oven/bun base (its version from packageManager, else the
// major), Bun's version in the step keys and the executor's choice, and
// no Node.js-only settings (the ABI check, NODE_OPTIONS' signal handler:
// Bun exits on SIGTERM by itself). nodeWhy, the evidence line that chose a
// Node.js version, is dropped.
func useBun(p *plan.Plan, pkg *packageJSON, evidence []string, nodeWhy string) []string {
	tag, want := bunMajor+"-slim", bunMajor
	if m := pmField.FindStringSubmatch(pkg.PackageManager); m != nil && m[1] == "bun" {
		tag, want = m[2]+"-slim", m[2]
	}
	p.Base = "oven/bun:" + tag
	p.Runtime = map[string]string{"bun": want}
	p.BaseRuntimes = []plan.BaseRuntime{{Name: "Bun", Want: strings.SplitN(want, ".", 2)[0], Host: bunToolchain}}
	p.ToolchainChecks = nil
	delete(p.Env, "NODE_OPTIONS")
	p.Layers = slices.DeleteFunc(p.Layers, func(l plan.Layer) bool { return l.Name == "packer" && l.Files["signals.js"] != "" })
	for i := range p.Steps {
		p.Steps[i].Toolchain = bunToolchain
	}
	evidence = slices.DeleteFunc(evidence, func(e string) bool { return e == nodeWhy })
	return append(evidence, "the app runs on Bun (it starts with bun): base "+p.Base+", Bun's version in the cache keys, no Node.js in the image needed")
}
