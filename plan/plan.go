// Package plan holds the serialisable contract between detection and
// building: what base to start from, which steps to run with the host
// toolchain, which layers to write and how the image is configured.
//
// A Plan is data only. `packer plan --json` prints it and golden files pin
// it, so every field carries a json tag and maps are emitted sorted.
package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Base values that packer understands without a registry.
const (
	// BaseStatic is a minimal base packer assembles itself: /etc/passwd and
	// /etc/group with root and nonroot, /tmp, /home/nonroot and Mozilla's CA
	// roots. Enough for static binaries; needs no network.
	BaseStatic = "builtin:static"
	// BaseScratch is an empty image.
	BaseScratch = "scratch"
)

// Source names a layer may be taken from besides a step's name.
const (
	// FromSource means the build context (after .dockerignore).
	FromSource = "src"
	// FromInline means the layer's Files, written by packer itself.
	FromInline = "inline"
)

// Platform placeholders expanded in step environments, named like Docker's
// automatic platform build args.
const (
	TargetOS      = "${TARGETOS}"
	TargetArch    = "${TARGETARCH}"
	TargetVariant = "${TARGETVARIANT}"
	// NodeArch is the target architecture in Node's naming (x64, arm64,
	// ia32, ...), for npm's --cpu.
	NodeArch = "${NODEARCH}"
	// TargetMachine is the target architecture as uname -m names it
	// (x86_64, aarch64, ...), for Python's platform tags.
	TargetMachine = "${TARGETMACHINE}"
)

// Plan is what a provider decides about an app.
type Plan struct {
	// Provider that produced the plan: "golang", "node", "python".
	Provider string `json:"provider"`
	// Evidence says why the plan looks the way it does ("go.mod found").
	Evidence []string `json:"evidence,omitempty"`
	// Base is an image reference, BaseStatic, BaseScratch or oci:DIR[:TAG].
	Base string `json:"base"`
	// Exclude lists extra .dockerignore-style patterns the provider wants
	// excluded from the context (e.g. node_modules).
	Exclude []string `json:"exclude,omitempty"`
	// Context lists .dockerignore-style patterns from the user's
	// configuration (packer.toml include/exclude), applied after
	// .dockerignore so they win over it.
	Context []string `json:"context,omitempty"`
	// BuildArgs are visible to every step (and part of its cache key);
	// they are also written to Env, as ARG X + ENV X=$X would.
	BuildArgs map[string]string `json:"buildArgs,omitempty"`
	// Steps run in order in a staging copy of the context.
	Steps []Step `json:"steps,omitempty"`
	// Platforms the image is built for (OS/ARCH[/VARIANT]); none means
	// this machine's architecture, on linux.
	Platforms []string `json:"platforms,omitempty"`
	// Layers are appended on the base in slice order.
	Layers []Layer `json:"layers"`
	// BuildImage is the image remote engines (BuildKit, a Dockerfile from
	// packer dockerfile) run the steps in when the base cannot: a static
	// base has no toolchain ("golang:1.22"). Empty means the base itself.
	// The daemonless path runs steps on this machine or in the base.
	BuildImage string `json:"buildImage,omitempty"`

	Entrypoint []string `json:"entrypoint,omitempty"`
	// Init runs the entrypoint under the base's init (tini) when it has
	// one, so signals are forwarded and orphaned processes reaped.
	Init       bool              `json:"init,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	WorkingDir string            `json:"workingDir,omitempty"`
	User       string            `json:"user,omitempty"`
	Ports      []int             `json:"ports,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// Annotations go on the image manifest.
	Annotations map[string]string `json:"annotations,omitempty"`
	Volumes     []string          `json:"volumes,omitempty"`
	StopSignal  string            `json:"stopSignal,omitempty"`
	// HealthPath and LivenessPath are HTTP paths Kubernetes probes (the
	// readiness and liveness probe) GET on the app's port.
	HealthPath   string       `json:"healthPath,omitempty"`
	LivenessPath string       `json:"livenessPath,omitempty"`
	Healthcheck  *Healthcheck `json:"healthcheck,omitempty"`

	// ToolchainChecks compare the steps' toolchain probes with the
	// image's runtime (a Node.js major that differs from the image's
	// builds native addons for the wrong ABI): the builder warns.
	ToolchainChecks []ToolchainCheck `json:"toolchainChecks,omitempty"`

	// Runtime names the language runtime versions the image targets
	// ({"node": "22"}).
	Runtime map[string]string `json:"runtime,omitempty"`
	// BaseRuntimes are checked against the base image once it is
	// resolved (a --base may hold another version than the plan assumed).
	BaseRuntimes []BaseRuntime `json:"baseRuntimes,omitempty"`

	// System lists distribution packages (apt on Debian and Ubuntu bases,
	// apk on Alpine) installed inside the image before the steps run.
	System *System `json:"system,omitempty"`

	// Origins says where each configurable value came from: "detected",
	// "packer.toml:LINE", "PACKER_BASE", "--base", ... Keys are the json
	// names above ("base", "user", "env.PORT", ...).
	Origins map[string]string `json:"origins,omitempty"`
}

// System packages: Build ones exist only while the steps run (compilers,
// -dev headers); Run ones become a layer of the image of their own, below
// the dependencies, cached by the package lists and the base's digest.
type System struct {
	Build []string `json:"build,omitempty"`
	Run   []string `json:"run,omitempty"`
}

// Empty reports whether s installs nothing.
func (s *System) Empty() bool { return s == nil || len(s.Build)+len(s.Run) == 0 }

// AddSystem adds packages to the plan's build and run lists (each once).
func (p *Plan) AddSystem(build, run []string) {
	if p.System == nil {
		p.System = &System{}
	}
	add := func(dst *[]string, pkgs []string) {
		for _, pkg := range pkgs {
			if !slices.Contains(*dst, pkg) {
				*dst = append(*dst, pkg)
			}
		}
	}
	add(&p.System.Build, build)
	add(&p.System.Run, run)
}

// NativeModule is a package whose native code builds against system
// libraries: the Debian packages it needs while building and at run time.
type NativeModule struct {
	Name       string
	Build, Run []string
}

// AddNativeModule adds m's system packages to the plan and returns the
// evidence line that says so.
func (p *Plan) AddNativeModule(m NativeModule) string {
	p.AddSystem(m.Build, m.Run)
	return fmt.Sprintf("%s builds against system libraries: installs %s inside the image while building, ships %s (Debian package names; packer.toml [system] adds others)",
		m.Name, strings.Join(m.Build, " "), strings.Join(m.Run, " "))
}

// PackageName is what a system package may be called: Debian's and
// Alpine's package names, optionally with =VERSION.
var PackageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.\-]*(=[A-Za-z0-9.+~:\-]+)?$`)

// ErrorHint maps a step failure's output to advice.
// BaseRuntime is a language runtime the plan expects in the base image.
// The builder reads its version from the base's config (Env, as official
// images set NODE_VERSION) or its Debian package (Dpkg). A version other
// than Want fails the build when Strict (packages were installed for
// Want) or when it is outside Range (what the app asked for); otherwise
// the build goes on for the base's version, and says so.
type BaseRuntime struct {
	Name   string `json:"name"`
	Want   string `json:"want"`
	Env    string `json:"env,omitempty"`
	Dpkg   string `json:"dpkg,omitempty"`
	Range  string `json:"range,omitempty"`
	Asked  string `json:"asked,omitempty"`
	Strict bool   `json:"strict,omitempty"`
	// Host prints this machine's version of the runtime (its first
	// dotted number counts). Where the host's version differs from the
	// image's (major.minor for Python, major for Node.js: as many parts
	// as Want has), steps run inside the image by default.
	Host []string `json:"host,omitempty"`
}

// ToolchainCheck is checked against each toolchain probe's output: when
// Pattern matches and its first group differs from Want, the builder logs
// Message as a warning, with ${have} and ${want} replaced.
type ToolchainCheck struct {
	Pattern string `json:"pattern"`
	Want    string `json:"want"`
	Message string `json:"message"`
}

type ErrorHint struct {
	Pattern string `json:"pattern"`
	Message string `json:"message"`
}

// Healthcheck is a Docker-format health check.
type Healthcheck struct {
	// Test is ["CMD", argv...] or ["CMD-SHELL", command].
	Test        []string `json:"test"`
	Interval    string   `json:"interval,omitempty"`
	Timeout     string   `json:"timeout,omitempty"`
	StartPeriod string   `json:"startPeriod,omitempty"`
	Retries     int      `json:"retries,omitempty"`
}

// Step is one command run with the host toolchain.
type Step struct {
	Name string `json:"name"`
	// Run is an argv, never a shell string.
	Run []string `json:"run"`
	// Env is added to the step's environment. Values may contain the
	// ${TARGETOS} / ${TARGETARCH} / ${TARGETVARIANT} placeholders.
	Env map[string]string `json:"env,omitempty"`
	// Inputs are .dockerignore-style patterns over the context whose files
	// (paths, modes and contents) form the step's cache key. Empty means
	// the whole context.
	Inputs []string `json:"inputs,omitempty"`
	// Reads are files the step reads besides its Inputs that are not part
	// of its cache key as a whole (Key covers what matters in them, such
	// as package.json's dependency fields): a remote engine copies them in
	// with the inputs.
	Reads []string `json:"reads,omitempty"`
	// Toolchain is an argv whose output (e.g. `go version`) is part of the
	// cache key, so a toolchain upgrade rebuilds.
	Toolchain []string `json:"toolchain,omitempty"`
	// Key is extra cache key material computed by the provider, e.g. a
	// digest of package.json's dependency fields when only those (and
	// not the whole file) should invalidate an install.
	Key string `json:"key,omitempty"`
	// NativeCheck makes packer check, after the step, that every ELF file
	// the step produced (native addons, shared objects) is for the target
	// platform, and fail naming the file otherwise.
	NativeCheck bool `json:"nativeCheck,omitempty"`
	// Files are written into the staging copy (paths relative to it)
	// before the step runs, e.g. requirements generated from a lockfile.
	Files map[string]string `json:"files,omitempty"`
	// Errors turn known failure output into a clear message: the first
	// pattern (a Go regexp) found in the step's output gives the error's
	// hint, with $1... replaced by the pattern's groups.
	Errors []ErrorHint `json:"errors,omitempty"`
	// Hint is added to the error when the step fails: the likely fix
	// ("run npm install and commit package-lock.json").
	Hint string `json:"hint,omitempty"`
	// Needs names earlier steps whose outputs this step reads from the
	// staging copy; when such a step was skipped (cache hit), packer puts
	// its cached layers back in place before this step runs.
	Needs []string `json:"needs,omitempty"`
	// Output is the directory, relative to the staging copy, the step
	// leaves its results in; layers taken from the step include paths
	// relative to it. Empty means the staging copy itself.
	Output string `json:"output,omitempty"`
}

// Layer is one image layer.
type Layer struct {
	Name string `json:"name"`
	// From is FromSource or the name of a step.
	From string `json:"from"`
	// Root is a directory inside the source whose contents the layer
	// takes (".next/standalone" → its files land directly in Dest).
	Root string `json:"root,omitempty"`
	// Include lists paths (files or directories) relative to the source
	// root (or Root). Empty means everything.
	Include []string `json:"include,omitempty"`
	// Exclude lists .dockerignore-style patterns left out of this layer.
	Exclude []string `json:"exclude,omitempty"`
	// Files are the contents of an inline layer (From = "inline"), by
	// path relative to Dest.
	Files map[string]string `json:"files,omitempty"`
	// Dest is the absolute directory in the image the files land in.
	Dest string `json:"dest"`
	// CacheOnly layers are written to the cache, to be put back for steps
	// that need them, but never added to the image (e.g. dev dependencies).
	CacheOnly bool `json:"cacheOnly,omitempty"`
	// Owner is "UID:GID" for the files; empty means 0:0.
	Owner string `json:"owner,omitempty"`
}

// JSON returns the plan as indented JSON with a trailing newline.
func (p *Plan) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep && and <> readable in commands
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Validate checks the plan is internally consistent. Providers call it;
// build calls it again on plans that came from elsewhere.
func (p *Plan) Validate() error {
	if p.Provider == "" {
		return fmt.Errorf("plan has no provider")
	}
	if p.Base == "" {
		return fmt.Errorf("plan has no base image")
	}
	if libc := p.Runtime["libc"]; libc != "" && (p.Base == BaseStatic || p.Base == BaseScratch) {
		return fmt.Errorf("base %s has no C library, and this build links against %s (cgo = true in packer.toml's [go]): choose a base with %s, e.g. --base debian:trixie-slim, or set cgo = false", p.Base, libc, libc)
	}
	steps := map[string]bool{}
	for _, s := range p.Steps {
		if s.Name == "" || s.Name == FromSource {
			return fmt.Errorf("step name %q is empty or reserved", s.Name)
		}
		if steps[s.Name] {
			return fmt.Errorf("two steps are named %q", s.Name)
		}
		if len(s.Run) == 0 {
			return fmt.Errorf("step %q has nothing to run", s.Name)
		}
		for _, n := range s.Needs {
			if !steps[n] {
				return fmt.Errorf("step %q needs %q, which is not an earlier step", s.Name, n)
			}
		}
		steps[s.Name] = true
	}
	if len(p.Layers) == 0 {
		return fmt.Errorf("plan has no layers")
	}
	if p.System != nil {
		for _, pkg := range append(slices.Clone(p.System.Build), p.System.Run...) {
			if !PackageName.MatchString(pkg) {
				return fmt.Errorf("system package %q is not a package name (lowercase letters, digits, + - ., optionally =VERSION)", pkg)
			}
		}
	}
	for _, l := range p.Layers {
		if l.From == FromInline && len(l.Files) == 0 {
			return fmt.Errorf("inline layer %q has no files", l.Name)
		}
		if l.From != FromSource && l.From != FromInline && !steps[l.From] {
			return fmt.Errorf("layer %q comes from %q, which is neither %q nor a step", l.Name, l.From, FromSource)
		}
		if !path.IsAbs(l.Dest) {
			return fmt.Errorf("layer %q has destination %q; it must be an absolute path", l.Name, l.Dest)
		}
		for _, inc := range append([]string{l.Root}, l.Include...) {
			if path.IsAbs(inc) || strings.HasPrefix(path.Clean(inc), "..") {
				return fmt.Errorf("layer %q includes %q, which is outside its source", l.Name, inc)
			}
		}
	}
	for _, c := range p.ToolchainChecks {
		if re, err := regexp.Compile(c.Pattern); err != nil || re.NumSubexp() < 1 {
			return fmt.Errorf("toolchain check %q is not a regular expression with a group", c.Pattern)
		}
	}
	return nil
}

// KubernetesProbes returns the readinessProbe and livenessProbe the plan
// asks for (HealthPath, LivenessPath), each an httpGet on the app's first
// port, as a container spec holds them; nil when it asks for none.
func (p *Plan) KubernetesProbes() map[string]any {
	if p.HealthPath == "" && p.LivenessPath == "" {
		return nil
	}
	port := 8080
	if len(p.Ports) > 0 {
		port = p.Ports[0]
	}
	probe := func(path string, failures int) map[string]any {
		return map[string]any{"httpGet": map[string]any{"path": path, "port": port}, "periodSeconds": 10, "failureThreshold": failures}
	}
	out := map[string]any{}
	if p.HealthPath != "" {
		out["readinessProbe"] = probe(p.HealthPath, 3)
	}
	if p.LivenessPath != "" {
		out["livenessProbe"] = probe(p.LivenessPath, 3)
	}
	return out
}
