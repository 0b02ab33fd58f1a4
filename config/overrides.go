package config

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/packer-build/packer/plan"
)

// Overrides are settings from one source. Zero values mean "not set".
type Overrides struct {
	Provider, Base, Target, User, Workdir, StopSignal string
	Entrypoint, Cmd                                   []string
	Ports                                             []int
	Platforms                                         []string
	Volumes                                           []string
	// Context holds .dockerignore-style patterns (include as "!p").
	Context                             []string
	Env, BuildArgs, Labels, Annotations map[string]string
	Healthcheck                         *plan.Healthcheck

	origins map[string]string
}

// NewOverrides returns empty overrides whose values come from origin
// unless Set says otherwise.
func NewOverrides() *Overrides { return &Overrides{origins: map[string]string{}} }

// SetOrigin records where key's value came from ("--user", ...).
func (o *Overrides) SetOrigin(key, origin string) { o.origins[key] = origin }

// Origin returns where key's value came from, or "".
func (o *Overrides) Origin(key string) string { return o.origins[key] }

// Merge layers overrides from lowest to highest precedence: later ones
// win per value; maps merge per key; context patterns accumulate.
func Merge(layers ...*Overrides) *Overrides {
	m := NewOverrides()
	for _, o := range layers {
		if o == nil {
			continue
		}
		pick := func(key string, set bool, apply func()) {
			if set {
				apply()
				m.origins[key] = o.origins[key]
			}
		}
		pick("provider", o.Provider != "", func() { m.Provider = o.Provider })
		pick("base", o.Base != "", func() { m.Base = o.Base })
		pick("target", o.Target != "", func() { m.Target = o.Target })
		pick("user", o.User != "", func() { m.User = o.User })
		pick("workingDir", o.Workdir != "", func() { m.Workdir = o.Workdir })
		pick("stopSignal", o.StopSignal != "", func() { m.StopSignal = o.StopSignal })
		pick("entrypoint", o.Entrypoint != nil, func() { m.Entrypoint = o.Entrypoint })
		pick("cmd", o.Cmd != nil, func() { m.Cmd = o.Cmd })
		pick("ports", o.Ports != nil, func() { m.Ports = o.Ports })
		pick("platforms", o.Platforms != nil, func() { m.Platforms = o.Platforms })
		pick("volumes", o.Volumes != nil, func() { m.Volumes = o.Volumes })
		pick("healthcheck", o.Healthcheck != nil, func() { m.Healthcheck = o.Healthcheck })
		pick("context", len(o.Context) > 0, func() { m.Context = append(m.Context, o.Context...) })
		mergeMap := func(table string, src map[string]string, dst *map[string]string) {
			for k, v := range src {
				if *dst == nil {
					*dst = map[string]string{}
				}
				(*dst)[k] = v
				m.origins[table+"."+k] = o.origins[table+"."+k]
			}
		}
		mergeMap("env", o.Env, &m.Env)
		mergeMap("buildArgs", o.BuildArgs, &m.BuildArgs)
		mergeMap("labels", o.Labels, &m.Labels)
		mergeMap("annotations", o.Annotations, &m.Annotations)
	}
	return m
}

// Apply writes the overrides onto a detected plan and records every
// value's origin; values the overrides leave alone are "detected".
func (o *Overrides) Apply(p *plan.Plan) {
	if p.Origins == nil {
		p.Origins = map[string]string{}
	}
	detected := "detected by " + p.Provider
	for _, k := range []string{"base", "entrypoint", "cmd", "user", "workingDir", "ports"} {
		p.Origins[k] = detected
	}
	for k := range p.Env {
		p.Origins["env."+k] = detected
	}
	set := func(key string, ok bool, apply func()) {
		if ok {
			apply()
			p.Origins[key] = o.origins[key]
		}
	}
	set("base", o.Base != "", func() { p.Base = o.Base })
	set("user", o.User != "", func() { p.User = o.User })
	set("workingDir", o.Workdir != "", func() { p.WorkingDir = o.Workdir })
	set("stopSignal", o.StopSignal != "", func() { p.StopSignal = o.StopSignal })
	set("entrypoint", o.Entrypoint != nil, func() {
		p.Entrypoint = o.Entrypoint
		// As in a Dockerfile, a new ENTRYPOINT drops the detected CMD.
		if o.Cmd == nil {
			p.Cmd = nil
		}
	})
	set("cmd", o.Cmd != nil, func() { p.Cmd = o.Cmd })
	set("ports", o.Ports != nil, func() {
		p.Ports = o.Ports
		// The app is told which port to listen on.
		if p.Env == nil {
			p.Env = map[string]string{}
		}
		p.Env["PORT"] = fmt.Sprint(o.Ports[0])
		p.Origins["env.PORT"] = o.origins["ports"]
	})
	set("volumes", o.Volumes != nil, func() { p.Volumes = o.Volumes })
	set("healthcheck", o.Healthcheck != nil, func() { p.Healthcheck = o.Healthcheck })
	set("context", len(o.Context) > 0, func() { p.Context = append(p.Context, o.Context...) })
	setMap := func(table string, src map[string]string, dst *map[string]string) {
		for k, v := range src {
			if *dst == nil {
				*dst = map[string]string{}
			}
			(*dst)[k] = v
			p.Origins[table+"."+k] = o.origins[table+"."+k]
		}
	}
	// Build args become ENV too (ARG X + ENV X=$X); --env wins over them.
	setMap("buildArgs", o.BuildArgs, &p.BuildArgs)
	for k, v := range o.BuildArgs {
		if p.Env == nil {
			p.Env = map[string]string{}
		}
		p.Env[k] = v
		p.Origins["env."+k] = o.origins["buildArgs."+k]
	}
	setMap("env", o.Env, &p.Env)
	setMap("labels", o.Labels, &p.Labels)
	setMap("annotations", o.Annotations, &p.Annotations)
}

// SplitCommand parses a command given as a string: a JSON array
// (["a","b c"]) as in a Dockerfile's exec form, or words split the way a
// shell would (quotes and backslashes honoured, nothing expanded).
func SplitCommand(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var argv []string
		if err := json.Unmarshal([]byte(s), &argv); err != nil {
			return nil, fmt.Errorf("invalid command %s: %v; write a JSON array of strings", s, err)
		}
		return argv, nil
	}
	var out []string
	var cur strings.Builder
	inWord, quote, esc := false, rune(0), false
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\' && quote != '\'':
			esc, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || esc {
		return nil, fmt.Errorf("invalid command %q: unterminated quote or escape", s)
	}
	if inWord {
		out = append(out, cur.String())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	return out, nil
}
