package builder

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/plan"
)

// checkRuntimes compares the plan's runtimes with the base's (its config's
// version variable, else its Debian package). A runtime the plan does not
// assume fails the build when packages were installed for the assumed one
// (Strict) or when it is outside what the app asked for; otherwise the
// build goes on for the base's version: the log says so, and the
// toolchain checks (the host's Node.js ABI) aim at it.
func (b *builder) checkRuntimes(base v1.Image, facts *baseFacts) error {
	if len(b.plan.BaseRuntimes) == 0 {
		return nil
	}
	cfg, err := base.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading the base image's config: %w", err)
	}
	var dpkg map[string]string
	if facts != nil {
		dpkg = facts.Dpkg
	}
	have, notes, err := CheckBaseRuntimes(b.plan, cfg.Config.Env, dpkg)
	if err != nil {
		return err
	}
	b.baseHave = have
	for _, n := range notes {
		b.logf("%s", n.Message)
	}
	b.aimChecks(notes)
	return nil
}

// aimChecks aims the toolchain checks at the base's versions the notes
// name, in place of the plan's.
func (b *builder) aimChecks(notes []RuntimeNote) {
	for _, n := range notes {
		for i := range b.checks {
			if b.checks[i].Want == n.Want {
				b.checks[i].Want = n.Have
			}
		}
	}
}

// RuntimeNote says the base has another runtime version than the plan
// assumed, and the build goes on for it (Have, cut to Want's parts).
type RuntimeNote struct {
	Message    string
	Want, Have string
}

// CheckBaseRuntimes checks the plan's runtimes against a base's config
// Env (and its Debian packages' versions, when known): the versions found
// by runtime name, notes for the ones the build adapts to, and an error
// for one it cannot (Strict, or outside the app's range). Every engine
// applies it (packer's own, BuildKit).
func CheckBaseRuntimes(p *plan.Plan, baseEnv []string, dpkg map[string]string) (map[string]string, []RuntimeNote, error) {
	env := map[string]string{}
	for _, kv := range baseEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	found := map[string]string{}
	var notes []RuntimeNote
	for _, r := range p.BaseRuntimes {
		have, from := env[r.Env], "its "+r.Env
		if have == "" && dpkg != nil {
			have, from = dpkg[r.Dpkg], "its "+r.Dpkg+" package"
		}
		have = strings.TrimPrefix(have, "v")
		found[r.Name] = have
		if have == "" || have == r.Want || strings.HasPrefix(have, r.Want+".") {
			continue // the plan's, or nothing packer can tell
		}
		asked := r.Asked
		if asked == "" {
			asked = "packer's default"
		}
		outside := false
		if r.Range != "" {
			c, cerr := semver.NewConstraint(r.Range)
			v, verr := semver.NewVersion(have)
			outside = cerr == nil && verr == nil && !c.Check(v)
		}
		if r.Strict || outside {
			return nil, nil, fmt.Errorf("the base image %s has %s %s (%s), but the build needs %s %s (%s): choose a base with %s %s, or ask for %s %s in the app",
				p.Base, r.Name, have, from, r.Name, r.Want, asked, r.Name, r.Want, r.Name, shortVersion(have, r.Want))
		}
		major := shortVersion(have, r.Want)
		notes = append(notes, RuntimeNote{Want: r.Want, Have: major,
			Message: fmt.Sprintf("the base image has %s %s (%s), not the %s %s the plan assumed (%s): building for %s %s", r.Name, have, from, r.Name, r.Want, asked, r.Name, major)})
	}
	return found, notes, nil
}

// shortVersion cuts have to as many parts as want has: "20.19.2", "22"
// gives "20"; "3.11.2", "3.13" gives "3.11".
func shortVersion(have, want string) string {
	parts := strings.Split(have, ".")
	n := strings.Count(want, ".") + 1
	if n > len(parts) {
		n = len(parts)
	}
	return strings.Join(parts[:n], ".")
}
