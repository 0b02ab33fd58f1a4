package scaleout

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/moby/patternmatcher"

	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/plan"
)

// Options say what a Dockerfile is made for besides the plan.
type Options struct {
	// Context lists the files of the build context after packer's ignore
	// rules (slash paths): the step inputs copied are those that exist.
	Context []string
	// Secrets are mounted into every step (RUN --mount=type=secret).
	Secrets []Secret
}

// stageRe keeps what a Dockerfile stage name may hold.
var stageRe = regexp.MustCompile(`[^a-z0-9_.-]+`)

func stageName(step string) string {
	n := stageRe.ReplaceAllString(strings.ToLower(step), "-")
	if n == "" || n == "packer-files" || n == "build-base" || n == "context" {
		n = "step-" + n
	}
	return n
}

// dq quotes a value for ENV, ARG and LABEL (Dockerfile's double quotes:
// backslash, quote and $ escaped).
func dq(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func jsonArray(argv []string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(argv) // strings always encode
	return strings.TrimSuffix(b.String(), "\n")
}

// printfWord is content as one line of shell: printf's format with its
// newlines, backslashes and percent signs escaped, single-quoted.
func printfWord(content string) string {
	r := strings.NewReplacer(`\`, `\\`, "%", "%%", "\n", `\n`, "\t", `\t`, "'", `'\''`)
	return "'" + r.Replace(content) + "'"
}

// runLines renders a RUN of shell commands, one per Dockerfile line.
func runLines(lines []string) string {
	return "RUN " + strings.Join(lines, " && \\\n    ")
}

// run renders a RUN instruction for a shell script: the shell form when
// it is one line, the exec form (sh -c) otherwise, since a Dockerfile
// line continuation would drop the script's newlines.
func run(mounts []string, script string) string {
	m := ""
	if len(mounts) > 0 {
		m = strings.Join(mounts, " ") + " "
	}
	if !strings.Contains(script, "\n") {
		return "RUN " + m + script
	}
	return "RUN " + m + jsonArray([]string{"sh", "-c", script})
}

// cacheMounts are the package managers' download caches per provider:
// kept by the engine between builds, never in a layer.
var cacheMounts = map[string][]string{
	"node":   {"/root/.npm", "/root/.cache", "/root/.local/share/pnpm/store", "/usr/local/share/.cache/yarn", "/root/.bun/install/cache"},
	"python": {"/root/.cache"},
	"golang": {"/root/.cache/go-build", "/go/pkg/mod"},
	"static": nil,
}

// caArgs are the variables through which a build behind a proxy that
// re-signs TLS trusts its CA: declared in every step stage, so
// --build-arg NODE_EXTRA_CA_CERTS=… reaches npm, pip and go.
var caArgs = []string{"NODE_EXTRA_CA_CERTS", "PIP_CERT", "SSL_CERT_FILE"}

// Dockerfile renders the plan as a multi-stage Dockerfile: packer's own
// files (the non-root user, the init, inline layers), one stage per step
// (a step with inputs copies only them, so its stage is cached by the
// lockfile), and the runtime stage taking each layer in the plan's order.
func Dockerfile(p *plan.Plan, o Options) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	static := p.Base == plan.BaseStatic
	scratch := p.Base == plan.BaseScratch
	w("# syntax=docker/dockerfile:1")
	w("# Made by `packer dockerfile` from packer's %s plan (`packer plan` explains it). Build it with any engine:", p.Provider)
	w("#   docker buildx build -t IMAGE .    buildah build -t IMAGE .    podman build -t IMAGE .")
	w("# Secrets: --secret id=ID,env=VAR or id=ID,src=FILE (buildx, buildah), seen by the steps as packer build gives them.")
	w("# Behind a proxy that re-signs TLS: --build-arg SSL_CERT_FILE=… (and NODE_EXTRA_CA_CERTS, PIP_CERT) with the CA mounted.")
	if len(p.Annotations) > 0 {
		w("# Manifest annotations packer sets (pass them with docker buildx build --annotation):")
		for _, k := range sortedKeys(p.Annotations) {
			w("#   %s=%s", k, p.Annotations[k])
		}
	}
	w("")
	switch {
	case static, scratch:
	case strings.HasPrefix(p.Base, "oci:") || strings.HasPrefix(p.Base, "builtin:"):
		w("# The plan's base is %s, which only packer reads: pass --build-arg BASE=IMAGE.", p.Base)
		w("ARG BASE")
	default:
		w("ARG BASE=%s", p.Base)
	}
	stepImage := "${BASE}"
	if p.BuildImage != "" {
		w("# The steps run in this image (the base has no toolchain, or another one).")
		w("ARG BUILDER=%s", p.BuildImage)
		stepImage = "${BUILDER}"
	} else if (static || scratch) && len(p.Steps) > 0 {
		return nil, fmt.Errorf("the plan's steps need an image to run in, and its base %s has none: set the plan's buildImage", p.Base)
	}
	stepFrom := stepImage
	if p.System != nil && len(p.System.Build) > 0 && len(p.Steps) > 0 {
		w("")
		w("# System packages the steps need (packer.toml [system] build), not shipped.")
		w("FROM %s AS build-base", stepImage)
		w("%s", run(nil, systemInstall(p.System.Build)))
		stepFrom = "build-base"
	}

	// packer's files.
	files := packerFilesScript(p)
	if files != "" {
		from := "${BASE}"
		if static || scratch {
			if p.BuildImage == "" {
				return nil, fmt.Errorf("base %s: packer's files (the non-root user, CA roots) need an image with a shell to be written in: set the plan's buildImage", p.Base)
			}
			from = stepImage
		}
		w("")
		w("# packer's files: the non-root user %s (%d), the init and the files packer writes itself.", plan.NonRootName, plan.NonRootUID)
		w("FROM %s AS packer-files", from)
		w("%s", files)
	}

	// Steps.
	layersOf := map[string][]plan.Layer{}
	for _, l := range p.Layers {
		layersOf[l.From] = append(layersOf[l.From], l)
	}
	stepOf := map[string]plan.Step{}
	for _, s := range p.Steps {
		stepOf[s.Name] = s
		name := stageName(s.Name)
		w("")
		var keyed []string
		if len(s.Inputs) > 0 && len(s.Needs) == 0 {
			var err error
			if keyed, err = matching(o.Context, append(slices.Clone(s.Inputs), s.Reads...)); err != nil {
				return nil, fmt.Errorf("step %s: %w", s.Name, err)
			}
		}
		switch {
		case len(s.Inputs) > 0 && len(s.Needs) == 0:
			w("# step %s, cached by %s", s.Name, strings.Join(s.Inputs, ", "))
		default:
			w("# step %s", s.Name)
		}
		w("FROM %s AS %s", stepFrom, name)
		for _, a := range caArgs {
			w("ARG %s", a)
		}
		if usesPlatform(s) {
			w("ARG TARGETOS")
			w("ARG TARGETARCH")
			w("ARG TARGETVARIANT")
		}
		for _, k := range sortedKeys(p.BuildArgs) {
			w("ARG %s=%s", k, dq(p.BuildArgs[k]))
		}
		w("WORKDIR %s", SrcDir)
		if len(s.Inputs) > 0 && len(s.Needs) == 0 {
			for _, c := range copyByDir(keyed) {
				w("%s", c)
			}
		} else {
			w("COPY . .")
		}
		for _, need := range s.Needs {
			ns := stepOf[need]
			for _, l := range layersOf[need] {
				w("COPY --from=%s %s/ %s/", stageName(need), path.Join(LayersDir, l.Name), path.Join(SrcDir, ns.Output, l.Root))
			}
		}
		var mounts []string
		for _, t := range cacheMounts[p.Provider] {
			mounts = append(mounts, "--mount=type=cache,target="+t)
		}
		for _, sec := range o.Secrets {
			mounts = append(mounts, "--mount=type=secret,id="+sec.ID)
		}
		w("%s", run(mounts, StepScript(s, o.Secrets)))
		for _, l := range layersOf[s.Name] {
			w("%s", run(nil, exportScript(l, path.Join(SrcDir, s.Output))))
		}
	}

	// Source layers with excludes of their own: filtered in a stage.
	for _, l := range p.Layers {
		if l.From == plan.FromSource && len(l.Exclude) > 0 {
			w("")
			w("# the context for layer %s, without %s", l.Name, strings.Join(l.Exclude, ", "))
			w("FROM %s AS context-%s", stepImage, stageName(l.Name))
			w("COPY . %s/", SrcDir)
			w("%s", run(nil, exportScript(l, SrcDir)))
		}
	}

	// The image.
	w("")
	w("# The image: the plan's layers in its order, non-root.")
	switch {
	case static, scratch:
		w("FROM scratch")
	default:
		w("FROM ${BASE}")
		if p.System != nil && len(p.System.Run) > 0 {
			w("%s", run(nil, systemInstall(p.System.Run)))
		}
	}
	if files != "" {
		w("COPY --from=packer-files /out/ /")
	}
	for _, l := range p.Layers {
		if l.CacheOnly || l.From == plan.FromInline {
			continue
		}
		chown := ""
		if l.Owner != "" {
			chown = "--chown=" + l.Owner + " "
		}
		switch {
		case l.From == plan.FromSource && len(l.Exclude) > 0:
			w("COPY --from=context-%s %s%s/ %s/", stageName(l.Name), chown, path.Join(LayersDir, l.Name), l.Dest)
		case l.From == plan.FromSource && len(l.Include) == 0:
			w("COPY %s. %s/", chown, path.Join(l.Dest))
		case l.From == plan.FromSource:
			inc, err := includes(o.Context, l)
			if err != nil {
				return nil, err
			}
			for _, i := range inc {
				w("COPY %s%s", chown, jsonArray([]string{i, path.Join(l.Dest, strings.TrimPrefix(i, l.Root))}))
			}
		default:
			w("COPY --from=%s %s%s/ %s/", stageName(l.From), chown, path.Join(LayersDir, l.Name), l.Dest)
		}
	}
	for _, k := range sortedKeys(p.BuildArgs) {
		w("ARG %s=%s", k, dq(p.BuildArgs[k]))
		w("ENV %s=${%s}", k, k)
	}
	for _, k := range sortedKeys(p.Env) {
		if _, ok := p.BuildArgs[k]; ok {
			continue
		}
		w("ENV %s=%s", k, dq(p.Env[k]))
	}
	for _, k := range sortedKeys(p.Labels) {
		w("LABEL %s=%s", dq(k), dq(p.Labels[k]))
	}
	for _, port := range p.Ports {
		w("EXPOSE %d", port)
	}
	for _, v := range p.Volumes {
		w("VOLUME %s", jsonArray([]string{v}))
	}
	if p.StopSignal != "" {
		w("STOPSIGNAL %s", p.StopSignal)
	}
	if h := p.Healthcheck; h != nil && len(h.Test) > 1 {
		var opts []string
		for _, kv := range [][2]string{{"interval", h.Interval}, {"timeout", h.Timeout}, {"start-period", h.StartPeriod}} {
			if kv[1] != "" {
				opts = append(opts, "--"+kv[0]+"="+kv[1])
			}
		}
		if h.Retries > 0 {
			opts = append(opts, fmt.Sprintf("--retries=%d", h.Retries))
		}
		cmd := jsonArray(h.Test[1:])
		if h.Test[0] == "CMD-SHELL" {
			cmd = h.Test[1]
		}
		w("HEALTHCHECK %sCMD %s", strings.Join(append(opts, ""), " "), cmd)
	}
	if p.WorkingDir != "" {
		w("WORKDIR %s", p.WorkingDir)
	}
	if p.User != "" {
		w("USER %s", p.User)
	}
	ep := p.Entrypoint
	if p.Init && !static && !scratch {
		ep = append([]string{plan.InitPath}, ep...)
	}
	if len(ep) > 0 {
		w("ENTRYPOINT %s", jsonArray(ep))
	}
	if len(p.Cmd) > 0 {
		w("CMD %s", jsonArray(p.Cmd))
	}
	return []byte(b.String()), nil
}

func usesPlatform(s plan.Step) bool {
	if slices.ContainsFunc(s.Run, hasPlaceholder) {
		return true
	}
	for _, v := range s.Env {
		if hasPlaceholder(v) {
			return true
		}
	}
	return false
}

// systemInstall installs distribution packages with apt (Debian, Ubuntu)
// or apk (Alpine), whichever the image has, leaving no index behind.
func systemInstall(pkgs []string) string {
	words := strings.Join(pkgs, " ") // plan.PackageName: no shell words
	return "if command -v apt-get >/dev/null; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends " + words +
		" && rm -rf /var/lib/apt/lists/*; else apk add --no-cache " + words + "; fi"
}

// packerFilesScript is a RUN that writes, under /out, what the
// daemonless path adds to the base itself (packerFilesLines), run in the
// base. "" when there is nothing to write.
func packerFilesScript(p *plan.Plan) string {
	lines := packerFilesLines(p, "")
	if len(lines) == 0 {
		return ""
	}
	return runLines(lines)
}

// packerFilesLines are shell commands writing, under /out, what the
// daemonless path adds to the base itself: the non-root user (kept from
// the base's passwd and group when it has them), the static base's
// files, the init and the inline layers. The base's root file system is
// at root ("" when the commands run in the base itself).
func packerFilesLines(p *plan.Plan, root string) []string {
	var lines []string
	static := p.Base == plan.BaseStatic
	uid := fmt.Sprint(plan.NonRootUID)
	passwdRoot := "root:x:0:0:root:/root:/sbin/nologin\n"
	passwdNonRoot := fmt.Sprintf("%s:x:%d:%d:%s:%s:/sbin/nologin\n", plan.NonRootName, plan.NonRootUID, plan.NonRootUID, plan.NonRootName, plan.NonRootHome)
	groupNonRoot := fmt.Sprintf("%s:x:%d:\n", plan.NonRootName, plan.NonRootUID)
	home := "/out" + plan.NonRootHome
	switch {
	case static:
		lines = append(lines,
			"mkdir -p /out/etc/ssl/certs /out/tmp "+home,
			"printf "+printfWord(passwdRoot+passwdNonRoot)+" > /out/etc/passwd",
			"printf "+printfWord("root:x:0:\n"+groupNonRoot)+" > /out/etc/group",
			"printf 'hosts: files dns\\n' > /out/etc/nsswitch.conf",
			"cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt",
			"chmod 1777 /out/tmp && chown "+uid+":"+uid+" "+home)
	case p.Base != plan.BaseScratch && p.User != "":
		lines = append(lines,
			"mkdir -p /out/etc /out/tmp "+home+" && chmod 1777 /out/tmp",
			"{ cp "+root+"/etc/passwd "+root+"/etc/group /out/etc/ 2>/dev/null || true; }",
			"{ [ -f /out/etc/passwd ] || printf "+printfWord(passwdRoot)+" > /out/etc/passwd; }",
			"{ grep -q '^[^:]*:[^:]*:"+uid+":' /out/etc/passwd || printf "+printfWord(passwdNonRoot)+" >> /out/etc/passwd; }",
			"{ [ -f /out/etc/group ] || printf 'root:x:0:\\n' > /out/etc/group; }",
			"{ grep -q '^[^:]*:[^:]*:"+uid+":' /out/etc/group || printf "+printfWord(groupNonRoot)+" >> /out/etc/group; }",
			"chown "+uid+":"+uid+" "+home)
	}
	if p.Init && !static && p.Base != plan.BaseScratch {
		init := "/out" + plan.InitPath
		lines = append(lines,
			"mkdir -p "+shq(path.Dir(init)),
			// The base's tini when it has one (as packer build uses it),
			// else packer's init under bash, else the app itself.
			"t=$(for f in /usr/bin/tini /sbin/tini /usr/sbin/tini; do [ -x "+root+"$f ] && echo $f && break; done); "+
				"b=$(for f in /usr/bin/bash /bin/bash; do [ -x "+root+"$f ] && echo $f && break; done); "+
				"if [ -n \"$t\" ]; then printf '#!/bin/sh\\nexec %s -- \"$@\"\\n' \"$t\" > "+init+" && chmod 755 "+init+"; "+
				"elif [ -n \"$b\" ]; then { echo \"#!$b\"; printf "+printfWord(builder.InitScript)+"; } > "+init+" && chmod 755 "+init+"; "+
				"else printf '#!/bin/sh\\nexec \"$@\"\\n' > "+init+" && chmod 755 "+init+"; fi")
	}
	for _, l := range p.Layers {
		if l.From != plan.FromInline {
			continue
		}
		for _, name := range sortedKeys(l.Files) {
			full := path.Join("/out", l.Dest, name)
			lines = append(lines, "mkdir -p "+shq(path.Dir(full)), "printf "+printfWord(l.Files[name])+" > "+shq(full))
			if l.Owner != "" {
				lines = append(lines, "chown "+shq(l.Owner)+" "+shq(full))
			}
		}
	}
	return lines
}

// matching returns the context files matched by .dockerignore-style
// patterns, sorted.
func matching(context, patterns []string) ([]string, error) {
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range context {
		if ok, err := pm.MatchesOrParentMatches(f); err == nil && ok {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// copyByDir renders COPY instructions putting each file at its own path
// under the working directory, one per directory.
func copyByDir(files []string) []string {
	byDir := map[string][]string{}
	for _, f := range files {
		d := path.Dir(f)
		byDir[d] = append(byDir[d], f)
	}
	var out []string
	for _, d := range sortedKeys(byDir) {
		dest := "./"
		if d != "." {
			dest = d + "/"
		}
		out = append(out, "COPY "+jsonArray(append(byDir[d], dest)))
	}
	return out
}

// includes returns a source layer's included paths that exist in the
// context (files, or directories holding some).
func includes(context []string, l plan.Layer) ([]string, error) {
	var out []string
	for _, inc := range l.Include {
		p := path.Join(l.Root, inc)
		for _, f := range context {
			if f == p || strings.HasPrefix(f, p+"/") {
				out = append(out, p)
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("layer %s: none of %s is in the context", l.Name, strings.Join(l.Include, ", "))
	}
	return out, nil
}

// DockerIgnore renders the .dockerignore matching packer's context rules:
// its default excludes (version control, env files, keys, credentials),
// the plan's and the user's patterns, and the files packer leaves out by
// their content (private keys, .npmrc with a token), each by name.
func DockerIgnore(defaults, planExcludes, user, byContent []string) []byte {
	var b strings.Builder
	b.WriteString("# Made by `packer dockerfile`: what packer build leaves out of the context.\n")
	section := func(title string, pats []string) {
		if len(pats) == 0 {
			return
		}
		b.WriteString("\n# " + title + "\n")
		for _, p := range pats {
			b.WriteString(p + "\n")
		}
	}
	section("never in a context: version control, env files, keys, credentials", defaults)
	section("the plan's (installed by the steps, not copied)", planExcludes)
	section("this project's own (.dockerignore, packer.toml)", user)
	section("secrets found by their content", byContent)
	return []byte(b.String())
}
