package builder

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	v1 "github.com/google/go-containerregistry/pkg/v1"
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
	env := map[string]string{}
	for _, kv := range cfg.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	b.baseHave = map[string]string{}
	for _, r := range b.plan.BaseRuntimes {
		have, from := env[r.Env], "its "+r.Env
		if have == "" && facts != nil {
			have, from = facts.Dpkg[r.Dpkg], "its "+r.Dpkg+" package"
		}
		have = strings.TrimPrefix(have, "v")
		b.baseHave[r.Name] = have
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
			return fmt.Errorf("the base image %s has %s %s (%s), but the build needs %s %s (%s): choose a base with %s %s, or ask for %s %s in the app",
				b.plan.Base, r.Name, have, from, r.Name, r.Want, asked, r.Name, r.Want, r.Name, shortVersion(have, r.Want))
		}
		major := shortVersion(have, r.Want)
		b.logf("the base image has %s %s (%s), not the %s %s the plan assumed (%s): building for %s %s", r.Name, have, from, r.Name, r.Want, asked, r.Name, major)
		for i := range b.checks {
			if b.checks[i].Want == r.Want {
				b.checks[i].Want = major
			}
		}
	}
	return nil
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
