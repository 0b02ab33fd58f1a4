package scaleout

import (
	"fmt"
	"path"
	"strings"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/packer-build/packer/plan"
)

// ContextName is the local source the build context is sent as.
const ContextName = "context"

// CASecret is the secret id of the CA bundle the steps trust (the
// client's, for TLS through a re-signing proxy), mounted at CAPath.
const (
	CASecret = "packer-ca"
	CAPath   = "/etc/packer-ca.crt"
)

// LLBOptions say what the LLB is made for besides the plan.
type LLBOptions struct {
	// Platform is the image's; BuildPlatform the one the steps run on
	// (the daemonless host executor's cross builds: Go with GOARCH, npm
	// with --cpu, pip with --platform), so no emulation is needed.
	Platform, BuildPlatform ocispecs.Platform
	// Base is the base image reference (ignored for a static or scratch
	// base); BuildImage the image steps run in when the plan has one.
	Base, BuildImage string
	// BaseEnv and BuildEnv are those images' config Env: a Run sees
	// only what the LLB gives it.
	BaseEnv, BuildEnv []string
	// Ignore are the context's exclude patterns (packer's rules).
	Ignore []string
	// Context lists the context's files (for the steps' inputs).
	Context []string
	Secrets []Secret
	// CA mounts the CASecret at CAPath and points npm, pip and Go at it.
	CA bool
	// ContextID names this context among the daemon's clients (BuildKit's
	// local.unique): stable for one directory on one machine, so the
	// definition is too and the daemon sends only what changed.
	ContextID string
}

func withEnv(st llb.State, env []string) llb.State {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		st = st.AddEnv(k, v)
	}
	return st
}

// LLB converts the plan to a BuildKit build graph for one platform: the
// base, the context as a local source filtered by packer's rules, each
// step as a run in the base (or the plan's build image) with the package
// managers' cache mounts and secrets, packer's own files, the layers
// copied onto the runtime base in the plan's order. The image config is
// not part of it: see ImageConfig.
func LLB(p *plan.Plan, o LLBOptions) (llb.State, error) {
	if err := p.Validate(); err != nil {
		return llb.State{}, err
	}
	static := p.Base == plan.BaseStatic
	scratch := p.Base == plan.BaseScratch
	var runtime llb.State
	switch {
	case static, scratch:
		runtime = llb.Scratch().Platform(o.Platform)
	case o.Base == "":
		return llb.State{}, fmt.Errorf("no base image reference for the plan's base %s", p.Base)
	default:
		runtime = withEnv(llb.Image(o.Base, llb.Platform(o.Platform), llb.WithCustomName("base "+o.Base)), o.BaseEnv)
	}
	// Where steps and packer's own scripts run: on the build platform.
	var tools llb.State
	switch {
	case p.BuildImage != "":
		if o.BuildImage == "" {
			o.BuildImage = p.BuildImage
		}
		tools = withEnv(llb.Image(o.BuildImage, llb.Platform(o.BuildPlatform), llb.WithCustomName("build image "+o.BuildImage)), o.BuildEnv)
	case static || scratch:
		if len(p.Steps) > 0 || static {
			return llb.State{}, fmt.Errorf("the plan's base %s has no shell or toolchain and the plan names no build image", p.Base)
		}
	default:
		tools = withEnv(llb.Image(o.Base, llb.Platform(o.BuildPlatform), llb.WithCustomName("base "+o.Base+" (build platform)")), o.BaseEnv)
	}
	exclude := append([]string{}, o.Ignore...)
	context := func(include []string) llb.State {
		opts := []llb.LocalOption{llb.ExcludePatterns(exclude), llb.SharedKeyHint(ContextName)}
		if o.ContextID != "" {
			opts = append(opts, llb.LocalUniqueID(o.ContextID))
		}
		if include != nil {
			opts = append(opts, llb.IncludePatterns(include), llb.WithCustomName("context: "+strings.Join(include, " ")))
		} else {
			opts = append(opts, llb.WithCustomName("context"))
		}
		return llb.Local(ContextName, opts...)
	}

	stepBase := tools
	if p.System != nil && len(p.System.Build) > 0 && len(p.Steps) > 0 {
		stepBase = stepBase.Run(llb.Args([]string{"sh", "-c", systemInstall(p.System.Build)}),
			llb.WithCustomName("system packages for the steps: "+strings.Join(p.System.Build, " "))).Root()
	}

	// Steps, each in its own state.
	stepState := map[string]llb.State{}
	stepOf := map[string]plan.Step{}
	layersOf := map[string][]plan.Layer{}
	for _, l := range p.Layers {
		layersOf[l.From] = append(layersOf[l.From], l)
	}
	for _, s := range p.Steps {
		stepOf[s.Name] = s
		st := stepBase.Dir(SrcDir).
			AddEnv("TARGETOS", o.Platform.OS).AddEnv("TARGETARCH", o.Platform.Architecture).AddEnv("TARGETVARIANT", o.Platform.Variant)
		for _, k := range sortedKeys(p.BuildArgs) {
			st = st.AddEnv(k, p.BuildArgs[k])
		}
		copyAll := &llb.CopyInfo{CopyDirContentsOnly: true, CreateDestPath: true}
		if len(s.Inputs) > 0 && len(s.Needs) == 0 {
			keyed, err := matching(o.Context, append(append([]string{}, s.Inputs...), s.Reads...))
			if err != nil {
				return llb.State{}, fmt.Errorf("step %s: %w", s.Name, err)
			}
			if len(keyed) > 0 {
				st = st.File(llb.Copy(context(keyed), "/", SrcDir, copyAll), llb.WithCustomName("step "+s.Name+": its inputs"))
			} else {
				st = st.File(llb.Mkdir(SrcDir, 0o755, llb.WithParents(true)))
			}
		} else {
			st = st.File(llb.Copy(context(nil), "/", SrcDir, copyAll), llb.WithCustomName("step "+s.Name+": the context"))
		}
		for _, need := range s.Needs {
			ns := stepOf[need]
			for _, l := range layersOf[need] {
				dir := path.Join(SrcDir, ns.Output, l.Root)
				st = st.File(llb.Copy(stepState[need], dir, dir, layerCopy(l, "")), llb.WithCustomName("step "+s.Name+": the output of "+need))
			}
		}
		opts := []llb.RunOption{llb.Args([]string{"sh", "-c", StepScript(s, o.Secrets)}), llb.WithCustomName("step " + s.Name + ": " + oneLine(s.Run))}
		for _, t := range cacheMounts[p.Provider] {
			opts = append(opts, llb.AddMount(t, llb.Scratch(), llb.AsPersistentCacheDir("packer:"+t, llb.CacheMountShared)))
		}
		for _, sec := range o.Secrets {
			opts = append(opts, llb.AddSecret(path.Join(SecretsDir, sec.ID), llb.SecretID(sec.ID)))
		}
		if o.CA {
			opts = append(opts, llb.AddSecret(CAPath, llb.SecretID(CASecret)),
				llb.AddEnv("SSL_CERT_FILE", CAPath), llb.AddEnv("NODE_EXTRA_CA_CERTS", CAPath), llb.AddEnv("PIP_CERT", CAPath))
		}
		stepState[s.Name] = st.Run(opts...).Root()
	}

	// The image.
	if !static && !scratch && p.System != nil && len(p.System.Run) > 0 {
		runtime = runtime.Run(llb.Args([]string{"sh", "-c", systemInstall(p.System.Run)}),
			llb.WithCustomName("system packages: "+strings.Join(p.System.Run, " "))).Root()
	}
	root := ""
	if !static && !scratch {
		root = "/base"
	}
	if lines := packerFilesLines(p, root); len(lines) > 0 {
		run := []llb.RunOption{llb.Args([]string{"sh", "-c", strings.Join(lines, " && ")}), llb.WithCustomName("packer's files: the non-root user, the init, inline files")}
		if root != "" {
			run = append(run, llb.AddMount(root, runtime, llb.Readonly))
		}
		files := tools.Run(run...).Root()
		runtime = runtime.File(llb.Copy(files, "/out", "/", &llb.CopyInfo{CopyDirContentsOnly: true}), llb.WithCustomName("layer: packer's files"))
	}
	for _, l := range p.Layers {
		if l.CacheOnly || l.From == plan.FromInline {
			continue
		}
		if l.From == plan.FromSource {
			runtime = runtime.File(llb.Copy(context(nil), "/"+l.Root, l.Dest, layerCopy(l, l.Owner)), llb.WithCustomName("layer "+l.Name+": the context → "+l.Dest))
			continue
		}
		s := stepOf[l.From]
		runtime = runtime.File(llb.Copy(stepState[l.From], path.Join(SrcDir, s.Output, l.Root), l.Dest, layerCopy(l, l.Owner)),
			llb.WithCustomName("layer "+l.Name+": "+l.From+" → "+l.Dest))
	}
	return runtime, nil
}

// layerCopy copies a layer's files: its Include and Exclude patterns,
// owned by owner ("UID:GID", "" for root).
func layerCopy(l plan.Layer, owner string) *llb.CopyInfo {
	ci := &llb.CopyInfo{CopyDirContentsOnly: true, CreateDestPath: true, AllowWildcard: true, AllowEmptyWildcard: true,
		IncludePatterns: l.Include, ExcludePatterns: l.Exclude}
	if owner != "" {
		co := llb.WithUser(owner).(llb.ChownOpt)
		ci.ChownOpt = &co
	}
	return ci
}

func oneLine(argv []string) string {
	s := strings.Join(argv, " ")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}
