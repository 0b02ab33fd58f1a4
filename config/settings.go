package config

import (
	"fmt"
	"path"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/packer-build/packer/plan"
)

// Setting is one user setting, described once: where it can be given
// (packer.toml key, PACKER_* variable, flag), how its text is parsed, and
// how it lands on the plan. Loading packer.toml, reading the environment,
// registering and reading flags, merging by precedence, applying to the
// plan and recording origins are all driven by Settings. Adding a setting
// is one row (and, for packer.toml, its field in File).
//
// The tables of key/value settings (env, build args, labels,
// annotations), the context patterns and the health check have shapes of
// their own and are handled beside this table.
type Setting struct {
	// Key names the value in origins and in the plan's JSON ("stopSignal").
	Key string
	// TOML is its packer.toml key ("stop_signal").
	TOML string
	// Env is its PACKER_* variable; "" when there is none.
	Env string
	// Flag is its command-line flag ("stop-signal"), Short its one-letter
	// form; BuildOnly flags exist on packer build only.
	Flag, Short string
	BuildOnly   bool
	// Repeat: the flag may be given several times (values accumulate).
	Repeat bool
	Usage  string
	// Parse turns the text of a flag (each time given) or a variable (one
	// element) into the value.
	Parse func(vals []string) (any, error)
	// File reads the value from packer.toml; ok is false when unset.
	File func(f *File) (v any, ok bool)
	// Apply writes the value onto the plan, with origin; nil for settings
	// that steer detection or the build instead (provider, target,
	// platforms).
	Apply func(p *plan.Plan, v any, origin string)
}

func str(vals []string) (any, error) { return vals[len(vals)-1], nil }

func command(vals []string) (any, error) { return SplitCommand(vals[len(vals)-1]) }

func commas(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// Settings are packer's user settings, in the order packer plan prints
// them.
var Settings = []Setting{
	{Key: "provider", TOML: "provider", Env: "PACKER_PROVIDER", Flag: "provider",
		Usage: "use this provider instead of detecting one (golang, node, python, static)",
		Parse: str, File: func(f *File) (any, bool) { return f.Provider, f.Provider != "" }},
	{Key: "base", TOML: "base", Env: "PACKER_BASE", Flag: "base",
		Usage: "base image: a registry reference, scratch, builtin:static, or a local OCI layout oci:DIR[:TAG]",
		Parse: str, File: func(f *File) (any, bool) { return f.Base, f.Base != "" },
		Apply: func(p *plan.Plan, v any, _ string) { p.Base = v.(string) }},
	{Key: "target", TOML: "target", Env: "PACKER_TARGET", Flag: "target",
		Usage: "what to build inside the app: a Go main package (./cmd/api) or a workspace package (packages/api)",
		Parse: str, File: func(f *File) (any, bool) { return f.Target, f.Target != "" }},
	{Key: "executor", TOML: "executor", Env: "PACKER_EXECUTOR", Flag: "executor",
		Usage: "where steps run: auto (default: inside the image when this machine's Node.js or Python differs from the image's, else here), host (this machine's toolchain), or image (inside the base image's own file system, with its Node.js, Python and libraries)",
		Parse: func(vals []string) (any, error) {
			v := vals[len(vals)-1]
			switch v {
			case "auto", "host", "image":
				return v, nil
			}
			return nil, fmt.Errorf("%q: use auto, host or image", v)
		},
		File: func(f *File) (any, bool) { return f.Executor, f.Executor != "" }},
	{Key: "entrypoint", TOML: "entrypoint", Env: "PACKER_ENTRYPOINT", Flag: "entrypoint",
		Usage: `entrypoint, as words ("/app/server --flag") or a JSON array`,
		Parse: command, File: func(f *File) (any, bool) { return f.Entrypoint, f.Entrypoint != nil },
		Apply: func(p *plan.Plan, v any, _ string) {
			p.Entrypoint = v.([]string)
			// As in a Dockerfile, a new ENTRYPOINT drops the detected CMD
			// (a cmd setting, applied after, puts one back).
			p.Cmd = nil
		}},
	{Key: "cmd", TOML: "cmd", Env: "PACKER_CMD", Flag: "cmd",
		Usage: "command (arguments to the entrypoint), as words or a JSON array",
		Parse: command, File: func(f *File) (any, bool) { return f.Cmd, f.Cmd != nil },
		Apply: func(p *plan.Plan, v any, _ string) { p.Cmd = v.([]string) }},
	{Key: "user", TOML: "user", Env: "PACKER_USER", Flag: "user", Short: "u",
		Usage: "user the image runs as (UID[:GID], or names the base's /etc/passwd and /etc/group have)",
		Parse: parseUser, File: func(f *File) (any, bool) { return f.User, f.User != "" },
		Apply: func(p *plan.Plan, v any, _ string) { p.User = v.(string) }},
	{Key: "workingDir", TOML: "workdir", Env: "PACKER_WORKDIR", Flag: "workdir", Short: "w",
		Usage: "working directory in the image (an absolute path)",
		Parse: func(vals []string) (any, error) {
			v := vals[len(vals)-1]
			if !path.IsAbs(v) {
				return nil, fmt.Errorf("%q is not an absolute path: the image's working directory starts with / (e.g. /app)", v)
			}
			return path.Clean(v), nil
		}, File: func(f *File) (any, bool) { return f.Workdir, f.Workdir != "" },
		Apply: func(p *plan.Plan, v any, _ string) { p.WorkingDir = v.(string) }},
	{Key: "ports", TOML: "ports", Env: "PACKER_PORT", Flag: "port", Short: "p", Repeat: true,
		Usage: "port the app listens on (sets PORT to the first; repeatable, or a comma list)",
		Parse: func(vals []string) (any, error) { return ParsePorts(commas(vals)) },
		File:  func(f *File) (any, bool) { return f.Ports, f.Ports != nil },
		Apply: func(p *plan.Plan, v any, origin string) {
			p.Ports = v.([]int)
			// The app is told which port to listen on.
			if p.Env == nil {
				p.Env = map[string]string{}
			}
			p.Env["PORT"] = fmt.Sprint(p.Ports[0])
			p.Origins["env.PORT"] = origin
		}},
	{Key: "platforms", TOML: "platforms", Env: "PACKER_PLATFORM", Flag: "platform",
		Usage: "target platforms, comma separated (e.g. linux/amd64,linux/arm64); several give an image index (default: this machine's)",
		Parse: func(vals []string) (any, error) {
			ps := commas(vals)
			if _, err := ParsePlatforms(strings.Join(ps, ",")); err != nil {
				return nil, err
			}
			return ps, nil
		},
		File:  func(f *File) (any, bool) { return f.Platforms, f.Platforms != nil },
		Apply: func(p *plan.Plan, v any, _ string) { p.Platforms = v.([]string) }},
	{Key: "stopSignal", TOML: "stop_signal", Env: "PACKER_STOP_SIGNAL", Flag: "stop-signal",
		Usage: "signal that stops the container (e.g. SIGINT, or its number)",
		Parse: parseSignal, File: func(f *File) (any, bool) { return f.StopSignal, f.StopSignal != "" },
		Apply: func(p *plan.Plan, v any, _ string) { p.StopSignal = v.(string) }},
	{Key: "healthPath", TOML: "health_path", Env: "PACKER_HEALTH_PATH", Flag: "health-path",
		Usage: "HTTP path of a Kubernetes readinessProbe (httpGet on the app's port): recorded as the dev.packer.probes annotation and printed as YAML after the build",
		Parse: httpPath, File: func(f *File) (any, bool) { return f.HealthPath, f.HealthPath != "" },
		Apply: func(p *plan.Plan, v any, _ string) { p.HealthPath = v.(string) }},
	{Key: "livenessPath", TOML: "liveness_path", Env: "PACKER_LIVENESS_PATH", Flag: "liveness-path",
		Usage: "HTTP path of a Kubernetes livenessProbe (httpGet on the app's port), as --health-path",
		Parse: httpPath, File: func(f *File) (any, bool) { return f.Liveness, f.Liveness != "" },
		Apply: func(p *plan.Plan, v any, _ string) { p.LivenessPath = v.(string) }},
	{Key: "system.build", TOML: "system.build", Env: "PACKER_SYSTEM_BUILD", Flag: "system-build", Repeat: true,
		Usage: "distribution packages (apt, apk) installed inside the image while the steps run only, e.g. libpq-dev (repeatable, or a comma list); added to those packer knows a module needs",
		Parse: packages,
		File:  func(f *File) (any, bool) { return systemList(f, false) },
		Apply: func(p *plan.Plan, v any, _ string) { p.AddSystem(v.([]string), nil) }},
	{Key: "system.run", TOML: "system.run", Env: "PACKER_SYSTEM_RUN", Flag: "system-run", Repeat: true,
		Usage: "distribution packages (apt, apk) installed inside the image and shipped in a layer of their own, e.g. libpq5 (repeatable, or a comma list)",
		Parse: packages,
		File:  func(f *File) (any, bool) { return systemList(f, true) },
		Apply: func(p *plan.Plan, v any, _ string) { p.AddSystem(nil, v.([]string)) }},
	{Key: "volumes", TOML: "volumes", Flag: "volume", Repeat: true,
		Usage: "declare a volume at PATH (repeatable)",
		Parse: func(vals []string) (any, error) {
			for _, v := range vals {
				if !strings.HasPrefix(v, "/") {
					return nil, fmt.Errorf("%q: want an absolute path in the image", v)
				}
			}
			return vals, nil
		},
		File:  func(f *File) (any, bool) { return f.Volumes, f.Volumes != nil },
		Apply: func(p *plan.Plan, v any, _ string) { p.Volumes = v.([]string) }},
}

var userRe = regexp.MustCompile(`^(\d+|[a-z_][a-z0-9_.-]*)(:(\d+|[a-z_][a-z0-9_.-]*))?$`)

// parseUser checks UID[:GID] (numbers or user and group names; the
// builder checks names against the base's passwd and group files).
func parseUser(vals []string) (any, error) {
	v := vals[len(vals)-1]
	if v != "" && !userRe.MatchString(v) {
		return nil, fmt.Errorf("%q is not UID[:GID]: give numbers (65532:65532) or user and group names the base image has", v)
	}
	return v, nil
}

var rtSignal = regexp.MustCompile(`^SIGRTM(IN|AX)([+-]\d+)?$`)

// parseSignal accepts what docker does: SIGTERM, TERM, 15, SIGRTMIN+3.
func parseSignal(vals []string) (any, error) {
	v := vals[len(vals)-1]
	if n, err := strconv.Atoi(v); err == nil {
		if n < 1 || n > 64 {
			return nil, fmt.Errorf("signal %d is out of range 1-64", n)
		}
		return v, nil
	}
	name := strings.ToUpper(v)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if unix.SignalNum(name) == 0 && !rtSignal.MatchString(name) {
		return nil, fmt.Errorf("%q is not a signal: use a name such as SIGTERM, SIGINT or SIGQUIT, or a number", v)
	}
	return name, nil
}

// packages parses package lists: repeatable, comma separated.
func packages(vals []string) (any, error) {
	pkgs := commas(vals)
	for _, p := range pkgs {
		if !plan.PackageName.MatchString(p) {
			return nil, fmt.Errorf("%q is not a package name (lowercase letters, digits, + - ., optionally =VERSION)", p)
		}
	}
	return pkgs, nil
}

func systemList(f *File, run bool) (any, bool) {
	if f.System == nil {
		return nil, false
	}
	l := f.System.Build
	if run {
		l = f.System.Run
	}
	return l, l != nil
}

// SettingFor returns the setting with key.
func SettingFor(key string) (Setting, bool) {
	for _, s := range Settings {
		if s.Key == key {
			return s, true
		}
	}
	return Setting{}, false
}

// ParsePlatforms parses a comma-separated platform list; empty means
// linux on this machine's architecture.
func ParsePlatforms(s string) ([]v1.Platform, error) {
	if strings.TrimSpace(s) == "" {
		return []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}}, nil
	}
	var out []v1.Platform
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		p, err := v1.ParsePlatform(part)
		if err != nil || p.OS == "" || p.Architecture == "" || strings.Count(part, "/") < 1 {
			return nil, fmt.Errorf("invalid --platform %q: want OS/ARCH[/VARIANT], e.g. linux/amd64,linux/arm64", part)
		}
		if p.OS != "linux" {
			return nil, fmt.Errorf("invalid --platform %q: packer builds linux images; use linux/ARCH", part)
		}
		if _, ok := plan.ArchOf(p.Architecture); !ok {
			var names []string
			for _, a := range plan.Archs {
				names = append(names, a.GOARCH)
			}
			return nil, fmt.Errorf("invalid --platform %q: unknown architecture %q; use one of %s", part, p.Architecture, strings.Join(names, ", "))
		}
		if seen[p.String()] {
			return nil, fmt.Errorf("--platform lists %s twice", p.String())
		}
		seen[p.String()] = true
		out = append(out, *p)
	}
	return out, nil
}

// httpPath is a probe's path: absolute, no spaces.
func httpPath(vals []string) (any, error) {
	v := vals[len(vals)-1]
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, " \t\n") {
		return nil, fmt.Errorf("%q is not an HTTP path: give one that starts with / (e.g. /ready)", v)
	}
	return v, nil
}
