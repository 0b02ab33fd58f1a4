// Package detect turns a source directory into a plan. Each language is a
// Provider in its own package (detect/golang, ...); builtin lists them in
// order and the first whose Detect matches plans the build.
package detect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/packer-build/packer/plan"
)

// Provider detects and plans one kind of app. Providers are stateless and
// read files only through src.
type Provider interface {
	// Name is the provider's id: "golang", "node", "python".
	Name() string
	// Hint names the files the provider looks for, for error messages.
	Hint() string
	// Detect is cheap and side-effect free.
	Detect(ctx context.Context, src fs.FS) (bool, error)
	// Plan decides the image. It is only called after Detect matched (or
	// when the user forced the provider).
	Plan(ctx context.Context, src fs.FS, opts Options) (*plan.Plan, error)
}

// Options are user choices that shape a plan.
type Options struct {
	// Target selects what to build inside the app, e.g. "./cmd/api" for Go.
	Target string
	// AllowUnlocked permits installing without a lockfile.
	AllowUnlocked bool
	// Go holds packer.toml's [go] settings, templates already expanded.
	Go GoOptions
}

// GoOptions are the go build settings ko users keep in .ko.yaml.
type GoOptions struct {
	Ldflags, Flags, Tags []string
	Env                  map[string]string
	Cgo                  bool
}

// ErrNoProvider is returned when no provider recognises the source.
var ErrNoProvider = errors.New("no supported app found")

// Run asks each provider in order and plans with the first that matches.
// force, when set, names the provider to use without detection.
func Run(ctx context.Context, src fs.FS, opts Options, providers []Provider, force string) (*plan.Plan, error) {
	var chosen Provider
	if force != "" {
		for _, p := range providers {
			if p.Name() == force {
				chosen = p
			}
		}
		if chosen == nil {
			return nil, fmt.Errorf("unknown provider %q; choose one of %s", force, names(providers))
		}
	} else {
		for _, p := range providers {
			ok, err := p.Detect(ctx, src)
			if err != nil {
				return nil, fmt.Errorf("detecting %s: %w", p.Name(), err)
			}
			if ok {
				chosen = p
				break
			}
		}
	}
	if chosen == nil {
		var hints []string
		for _, p := range providers {
			hints = append(hints, p.Hint())
		}
		return nil, fmt.Errorf("%w: looked for %s; run packer in the app's directory or pass --provider", ErrNoProvider, strings.Join(hints, ", "))
	}
	pl, err := chosen.Plan(ctx, src, opts)
	if err != nil {
		return nil, err
	}
	if err := pl.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s made an invalid plan: %w", chosen.Name(), err)
	}
	return pl, nil
}

func names(ps []Provider) string {
	var n []string
	for _, p := range ps {
		n = append(n, p.Name())
	}
	return strings.Join(n, ", ")
}

// Exists reports whether name exists in src.
func Exists(src fs.FS, name string) bool {
	_, err := fs.Stat(src, name)
	return err == nil
}

// IsDir reports whether name is a directory in src.
func IsDir(src fs.FS, name string) bool {
	st, err := fs.Stat(src, name)
	return err == nil && st.IsDir()
}

// NeedTargetError says the app holds several things to build and the
// user must choose one (the CLI names its flag, --target; packer.toml's
// target and PACKER_TARGET work too).
type NeedTargetError struct {
	// What the choices are: "workspace package", "main package".
	What string
	// Why there is no default ("this is a workspace monorepo").
	Why string
	// Choices lists what can be built, as a target names them.
	Choices []string
}

func (e *NeedTargetError) Error() string {
	return fmt.Sprintf("%s (%s): choose the %s to build", e.Why, strings.Join(e.Choices, ", "), e.What)
}

// BadTargetError says the chosen target is not one of the choices.
type BadTargetError struct {
	Target, Reason string
	Choices        []string
}

func (e *BadTargetError) Error() string {
	msg := fmt.Sprintf("target %s %s", e.Target, e.Reason)
	if len(e.Choices) > 0 {
		msg += "; choose one of " + strings.Join(e.Choices, ", ")
	}
	return msg
}
