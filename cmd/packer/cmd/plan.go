package cmd

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/detect/builtin"
	"github.com/packer-build/packer/plan"
)

type planOptions struct {
	provider string
	target   string
	base     string
}

func (o *planOptions) addFlags(c *cobra.Command) {
	c.Flags().StringVar(&o.provider, "provider", "", "use this provider instead of detecting one (golang)")
	c.Flags().StringVar(&o.target, "target", "", "what to build inside the app, e.g. ./cmd/api for a Go module with several mains")
	c.Flags().StringVar(&o.base, "base", "", "base image: a registry reference, scratch, builtin:static, or a local OCI layout oci:DIR[:TAG]")
}

// makePlan detects the app in dir and applies flag overrides.
func (o *planOptions) makePlan(c *cobra.Command, dir string) (*plan.Plan, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("build context %q: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("build context %q is not a directory; pass the app's directory", dir)
	}
	p, err := detect.Run(c.Context(), os.DirFS(dir), detect.Options{Target: o.target}, builtin.Providers(), o.provider)
	if err != nil {
		return nil, err
	}
	if o.base != "" {
		p.Base = o.base
		p.Evidence = append(p.Evidence, "base set by --base")
	}
	return p, nil
}

func newPlan(ro *rootOptions) *cobra.Command {
	o := &planOptions{}
	var asJSON bool
	c := &cobra.Command{
		Use:   "plan [DIR]",
		Short: "Print what packer would build for DIR (default .)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			p, err := o.makePlan(c, dir)
			if err != nil {
				return err
			}
			if asJSON {
				b, err := p.JSON()
				if err != nil {
					return err
				}
				_, err = c.OutOrStdout().Write(b)
				return err
			}
			printPlan(c.OutOrStdout(), p)
			return nil
		},
	}
	o.addFlags(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return c
}

func printPlan(w io.Writer, p *plan.Plan) {
	fmt.Fprintf(w, "provider:   %s\n", p.Provider)
	for _, e := range p.Evidence {
		fmt.Fprintf(w, "  because   %s\n", e)
	}
	fmt.Fprintf(w, "base:       %s\n", p.Base)
	for _, s := range p.Steps {
		fmt.Fprintf(w, "step:       %s: %s\n", s.Name, strings.Join(s.Run, " "))
	}
	for _, l := range p.Layers {
		what := "everything"
		if len(l.Include) > 0 {
			what = strings.Join(l.Include, ", ")
		}
		fmt.Fprintf(w, "layer:      %s: %s from %s → %s\n", l.Name, what, l.From, l.Dest)
	}
	fmt.Fprintf(w, "entrypoint: %s\n", strings.Join(p.Entrypoint, " "))
	if len(p.Cmd) > 0 {
		fmt.Fprintf(w, "cmd:        %s\n", strings.Join(p.Cmd, " "))
	}
	fmt.Fprintf(w, "workdir:    %s\n", p.WorkingDir)
	fmt.Fprintf(w, "user:       %s\n", p.User)
	for _, kv := range sortedEnv(p.Env) {
		fmt.Fprintf(w, "env:        %s\n", kv)
	}
	for _, port := range p.Ports {
		fmt.Fprintf(w, "port:       %d\n", port)
	}
}
