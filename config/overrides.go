package config

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/packer-build/packer/plan"
)

// Overrides are settings from one source. Unset values are absent.
type Overrides struct {
	// vals holds the values of Settings, by key.
	vals map[string]any
	// Context holds .dockerignore-style patterns (include as "!p").
	Context                             []string
	Env, BuildArgs, Labels, Annotations map[string]string
	Healthcheck                         *plan.Healthcheck

	origins map[string]string
}

// NewOverrides returns empty overrides.
func NewOverrides() *Overrides {
	return &Overrides{vals: map[string]any{}, origins: map[string]string{}}
}

// Set records the value of the setting key (see Settings) and where it
// came from ("--user", "PACKER_USER", "packer.toml:4").
func (o *Overrides) Set(key string, v any, origin string) {
	o.vals[key] = v
	o.origins[key] = origin
}

// SetOrigin records where key's value came from ("--env", ...).
func (o *Overrides) SetOrigin(key, origin string) { o.origins[key] = origin }

// Origin returns where key's value came from, or "".
func (o *Overrides) Origin(key string) string { return o.origins[key] }

// String returns a string setting's value, or "".
func (o *Overrides) String(key string) string {
	s, _ := o.vals[key].(string)
	return s
}

// Strings returns a list setting's value, or nil.
func (o *Overrides) Strings(key string) []string {
	s, _ := o.vals[key].([]string)
	return s
}

// Merge layers overrides from lowest to highest precedence: later ones
// win per value; maps merge per key; context patterns accumulate.
func Merge(layers ...*Overrides) *Overrides {
	m := NewOverrides()
	for _, o := range layers {
		if o == nil {
			continue
		}
		for _, s := range Settings {
			if v, ok := o.vals[s.Key]; ok {
				m.Set(s.Key, v, o.origins[s.Key])
			}
		}
		if o.Healthcheck != nil {
			m.Healthcheck = o.Healthcheck
			m.origins["healthcheck"] = o.origins["healthcheck"]
		}
		if len(o.Context) > 0 {
			m.Context = append(m.Context, o.Context...)
			m.origins["context"] = o.origins["context"]
		}
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
	for _, s := range Settings {
		if v, ok := o.vals[s.Key]; ok && s.Apply != nil {
			s.Apply(p, v, o.origins[s.Key])
			p.Origins[s.Key] = o.origins[s.Key]
		}
	}
	if o.Healthcheck != nil {
		p.Healthcheck = o.Healthcheck
		p.Origins["healthcheck"] = o.origins["healthcheck"]
	}
	if len(o.Context) > 0 {
		p.Context = append(p.Context, o.Context...)
		p.Origins["context"] = o.origins["context"]
	}
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
