// Package scaleout hands packer's plan to engines that are not packer:
// a multi-stage Dockerfile any engine builds (docker buildx, buildah,
// podman, kaniko forks, hosted builders), and LLB solved by a BuildKit
// daemon (a remote buildkitd, its Kubernetes deployments). The plan stays
// the single source of truth: both are made from it, stage by stage, in
// the daemonless path's layer order.
package scaleout

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/packer-build/packer/plan"
)

// SrcDir is where a step stage holds its copy of the context (the
// daemonless path's staging copy).
const SrcDir = "/packer/src"

// LayersDir is where a step stage leaves the filtered contents of the
// layers taken from it.
const LayersDir = "/packer/layers"

// Secret is a --secret a step sees: its ID and, when it came from a
// variable, that the steps see it as the variable ID (packer build's
// contract; a file secret is the file $PACKER_SECRETS/ID).
type Secret struct {
	ID  string
	Env bool
}

// wellKnownSecrets are secret ids whose file a tool reads through a
// variable (as packer build sets them).
var wellKnownSecrets = map[string]string{
	"npmrc": "NPM_CONFIG_USERCONFIG", ".npmrc": "NPM_CONFIG_USERCONFIG",
	"pip.conf": "PIP_CONFIG_FILE", "pipconf": "PIP_CONFIG_FILE",
	"netrc": "NETRC", ".netrc": "NETRC",
}

// SecretsDir is where engines mount secrets (Dockerfile's and BuildKit's
// default for RUN --mount=type=secret).
const SecretsDir = "/run/secrets"

// shq quotes s for a POSIX shell.
func shq(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// placeholders are the plan's platform placeholders, and the shell
// variables the platform prelude sets for them.
var placeholders = []string{plan.TargetOS, plan.TargetArch, plan.TargetVariant, plan.NodeArch, plan.TargetMachine}

func hasPlaceholder(s string) bool {
	for _, p := range placeholders {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// shArg quotes one argument, its placeholders left to the shell
// ("--cpu=${NODEARCH}" → '--cpu='"${NODEARCH}").
func shArg(s string) string {
	if !hasPlaceholder(s) {
		return shq(s)
	}
	var b strings.Builder
	for s != "" {
		i, which := len(s), ""
		for _, p := range placeholders {
			if j := strings.Index(s, p); j >= 0 && j < i {
				i, which = j, p
			}
		}
		if i > 0 {
			b.WriteString(shq(s[:i]))
		}
		if which == "" {
			break
		}
		b.WriteString(`"` + which + `"`)
		s = s[i+len(which):]
	}
	return b.String()
}

// platformPrelude sets the placeholders' variables inside the image that
// runs the step: TARGETOS/TARGETARCH/TARGETVARIANT from the engine's
// automatic build args when it sets them (the target platform, which
// may not be the one the step runs on), else from uname; Node's and
// uname's names of that architecture from plan.Archs.
var platformPrelude = func() string {
	var fromUname, names []string
	for _, a := range plan.Archs {
		fromUname = append(fromUname, fmt.Sprintf("%s) TARGETARCH=%s;;", a.Uname, a.GOARCH))
		names = append(names, fmt.Sprintf("%s) NODEARCH=%s TARGETMACHINE=%s;;", a.GOARCH, a.Node, a.Uname))
	}
	return `TARGETOS="${TARGETOS:-linux}"; ` +
		`if [ -z "${TARGETARCH:-}" ]; then case "$(uname -m)" in ` + strings.Join(fromUname, " ") + ` *) TARGETARCH="$(uname -m)";; esac; fi; ` +
		`case "$TARGETARCH" in ` + strings.Join(names, " ") + ` *) NODEARCH="$TARGETARCH" TARGETMACHINE="$TARGETARCH";; esac; ` +
		`export TARGETOS TARGETARCH TARGETVARIANT NODEARCH TARGETMACHINE`
}()

// StepScript is the shell script that runs step s in a stage whose
// working directory is the staging copy: the platform variables, the
// secrets as packer build gives them, the step's environment and files,
// then its command.
func StepScript(s plan.Step, secrets []Secret) string {
	var lines []string
	uses := slices.ContainsFunc(s.Run, hasPlaceholder)
	for _, v := range s.Env {
		uses = uses || hasPlaceholder(v)
	}
	for _, c := range s.Files {
		uses = uses || hasPlaceholder(c)
	}
	if uses {
		lines = append(lines, platformPrelude)
	}
	if len(secrets) > 0 {
		exports := []string{"export PACKER_SECRETS=" + SecretsDir}
		for _, sec := range secrets {
			if v := wellKnownSecrets[sec.ID]; v != "" {
				exports = append(exports, "export "+v+"="+shq(path.Join(SecretsDir, sec.ID)))
			}
			if sec.Env {
				exports = append(exports, "export "+sec.ID+`="$(cat `+shq(path.Join(SecretsDir, sec.ID))+`)"`)
			}
		}
		lines = append(lines, strings.Join(exports, "; "))
	}
	if len(s.Env) > 0 {
		var kv []string
		for _, k := range sortedKeys(s.Env) {
			kv = append(kv, k+"="+shArg(s.Env[k]))
		}
		lines = append(lines, "export "+strings.Join(kv, " "))
	}
	for _, name := range sortedKeys(s.Files) {
		dir := path.Dir(name)
		mk := ""
		if dir != "." {
			mk = "mkdir -p " + shq(dir) + " && "
		}
		lines = append(lines, mk+"printf '%s' "+shArg(s.Files[name])+" > "+shq(name))
	}
	if len(s.Run) == 3 && s.Run[0] == "sh" && s.Run[1] == "-c" {
		// The script itself: its placeholders are already the prelude's
		// variables.
		lines = append(lines, s.Run[2])
	} else {
		var argv []string
		for _, a := range s.Run {
			argv = append(argv, shArg(a))
		}
		lines = append(lines, strings.Join(argv, " "))
	}
	return strings.Join(lines, "\n")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// exportScript copies what layer l takes from its source directory dir
// (the step's output, or the context) into LayersDir/NAME, leaving out
// its Exclude patterns: .dockerignore syntax as GNU tar's --exclude
// (anchored for a plain name or a path, anywhere for a **/ pattern).
func exportScript(l plan.Layer, dir string) string {
	out := path.Join(LayersDir, l.Name)
	src := path.Join(dir, l.Root)
	args := []string{"tar", "-C", shq(src), "--ignore-failed-read", "-cf", "-"}
	var anchored, anywhere []string
	for _, e := range l.Exclude {
		e = strings.TrimPrefix(e, "/")
		if rest, ok := strings.CutPrefix(e, "**/"); ok {
			anywhere = append(anywhere, rest)
		} else {
			anchored = append(anchored, "./"+e)
		}
	}
	if len(anchored) > 0 {
		args = append(args, "--anchored")
		for _, e := range anchored {
			args = append(args, "--exclude="+shq(e))
		}
	}
	if len(anywhere) > 0 {
		args = append(args, "--no-anchored")
		for _, e := range anywhere {
			args = append(args, "--exclude="+shq(e))
		}
	}
	if len(l.Include) == 0 {
		args = append(args, ".")
	} else {
		for _, inc := range l.Include {
			args = append(args, shq("./"+strings.TrimPrefix(inc, "/")))
		}
	}
	return fmt.Sprintf("mkdir -p %s && %s | tar -xf - -C %s", shq(out), strings.Join(args, " "), shq(out))
}
