package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/packer-build/packer/buildargs"
	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/config"
	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/detect/builtin"
	"github.com/packer-build/packer/plan"
)

// planOptions are the flags that shape a plan, shared by plan and build.
type planOptions struct {
	// settings holds the flags of config.Settings, by key: a *string, or
	// a *[]string for repeatable flags.
	settings map[string]any

	configFile    string
	planFile      string
	allowUnlocked bool

	buildArgs      []string
	allowSecretArg bool
	env, envFiles  []string

	healthcheck         string
	labels, annotations []string
}

func (o *planOptions) addFlags(c *cobra.Command, build bool) {
	f := c.Flags()
	o.settings = map[string]any{}
	for _, s := range config.Settings {
		if s.Flag == "" || (s.BuildOnly && !build) {
			continue
		}
		if s.Repeat {
			o.settings[s.Key] = f.StringArrayP(s.Flag, s.Short, nil, s.Usage)
		} else {
			o.settings[s.Key] = f.StringP(s.Flag, s.Short, "", s.Usage)
		}
	}
	f.StringVar(&o.configFile, "config", "", "config file (default: DIR/packer.toml when present)")
	f.BoolVar(&o.allowUnlocked, "allow-unlocked", false, "install dependencies even when the app has no lockfile (not reproducible)")
	f.StringVar(&o.planFile, "plan", "", "use this plan (JSON, as printed by packer plan --json) instead of detecting one")
	f.StringArrayVar(&o.buildArgs, "build-arg", nil, "KEY=VALUE (or KEY, from the environment): visible to build steps and written to the image as ENV")
	f.BoolVar(&o.allowSecretArg, "allow-secret-build-args", false, "accept build args whose names look like secrets (TOKEN, PASSWORD, ...)")
	f.StringArrayVarP(&o.env, "env", "e", nil, "KEY=VALUE (or KEY, from the environment): image ENV only, not visible to steps")
	f.StringArrayVar(&o.envFiles, "env-file", nil, "read image ENV from a file in docker's env-file format")
	f.StringArrayVar(&o.labels, "label", nil, "image label KEY=VALUE (repeatable)")
	f.StringArrayVar(&o.annotations, "annotation", nil, "manifest annotation KEY=VALUE (repeatable)")
	f.StringVar(&o.healthcheck, "healthcheck", "", `health check command: a shell command (CMD-SHELL) or a JSON array (CMD); also hinted as a Kubernetes probe annotation`)
}

// flagOverrides turns the flags the user set into config overrides.
func (o *planOptions) flagOverrides(c *cobra.Command) (*config.Overrides, error) {
	ov := config.NewOverrides()
	changed := func(name string) bool { return c.Flags().Changed(name) }
	for _, s := range config.Settings {
		ref, ok := o.settings[s.Key]
		if !ok || !changed(s.Flag) {
			continue
		}
		var vals []string
		switch r := ref.(type) {
		case *string:
			vals = []string{*r}
		case *[]string:
			vals = *r
		}
		v, err := s.Parse(vals)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", s.Flag, err)
		}
		if v == "" {
			continue // --user "" leaves the setting unset
		}
		ov.Set(s.Key, v, "--"+s.Flag)
	}
	if changed("healthcheck") {
		test := []string{"CMD-SHELL", o.healthcheck}
		if strings.HasPrefix(strings.TrimSpace(o.healthcheck), "[") {
			argv, err := config.SplitCommand(o.healthcheck)
			if err != nil {
				return nil, fmt.Errorf("--healthcheck: %w", err)
			}
			test = append([]string{"CMD"}, argv...)
		} else if strings.TrimSpace(o.healthcheck) == "" {
			return nil, fmt.Errorf("--healthcheck: empty command")
		}
		ov.Healthcheck = &plan.Healthcheck{Test: test, Interval: "30s", Timeout: "30s", Retries: 3}
		ov.SetOrigin("healthcheck", "--healthcheck")
	}
	kvFlag := func(flag, table string, vals []string, dst *map[string]string) error {
		for _, kv := range vals {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("invalid --%s %q: want KEY=VALUE", flag, kv)
			}
			if *dst == nil {
				*dst = map[string]string{}
			}
			(*dst)[k] = v
			ov.SetOrigin(table+"."+k, "--"+flag)
		}
		return nil
	}
	if err := kvFlag("label", "labels", o.labels, &ov.Labels); err != nil {
		return nil, err
	}
	if err := kvFlag("annotation", "annotations", o.annotations, &ov.Annotations); err != nil {
		return nil, err
	}
	for _, s := range o.buildArgs {
		kv, ok, err := buildargs.ParseBuildArg(s, os.LookupEnv)
		if err != nil {
			return nil, err
		}
		if !ok {
			fmt.Fprintf(c.ErrOrStderr(), "packer: warning: --build-arg %s: %s is not set in the environment; left unset\n", kv.Key, kv.Key)
			continue
		}
		if ov.BuildArgs == nil {
			ov.BuildArgs = map[string]string{}
		}
		ov.BuildArgs[kv.Key] = kv.Value
		ov.SetOrigin("buildArgs."+kv.Key, "--build-arg")
	}
	// --env-file first, then --env: docker run's order.
	var envs []buildargs.KV
	origin := map[string]string{}
	for _, f := range o.envFiles {
		kvs, err := buildargs.ReadEnvFile(f, os.LookupEnv)
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			origin[kv.Key] = "--env-file " + f
		}
		envs = append(envs, kvs...)
	}
	for _, s := range o.env {
		kv, ok, err := buildargs.ParseEnv(s, os.LookupEnv)
		if err != nil {
			return nil, err
		}
		if ok {
			envs = append(envs, kv)
			origin[kv.Key] = "--env"
		}
	}
	if m := buildargs.Map(envs); m != nil {
		ov.Env = m
		for k := range m {
			ov.SetOrigin("env."+k, origin[k])
		}
	}
	return ov, nil
}

// makePlan detects the app in dir and applies packer.toml, PACKER_*
// variables and flags, in rising precedence. It returns the plan and the
// merged settings (for the platforms).
func (o *planOptions) makePlan(c *cobra.Command, dir string) (*plan.Plan, *config.Overrides, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("build context %q: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("build context %q is not a directory; pass the app's directory", dir)
	}
	cfgPath := o.configFile
	if cfgPath == "" {
		cfgPath = filepath.Join(dir, config.FileName)
	} else if _, err := os.Stat(cfgPath); err != nil {
		return nil, nil, fmt.Errorf("--config: %w", err)
	}
	file, lines, err := config.Load(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	envO, err := config.EnvOverrides(os.LookupEnv)
	if err != nil {
		return nil, nil, err
	}
	flagO, err := o.flagOverrides(c)
	if err != nil {
		return nil, nil, err
	}
	merged := config.Merge(file.Overrides(filepath.Base(cfgPath), lines), envO, flagO)
	if err := buildargs.CheckBuildArgs(kvs(merged.BuildArgs), o.allowSecretArg); err != nil {
		return nil, nil, err
	}
	var p *plan.Plan
	if o.planFile != "" {
		if p, err = readPlan(o.planFile); err != nil {
			return nil, nil, err
		}
	} else {
		var goOpts detect.GoOptions
		if file != nil {
			if goOpts, err = goOptions(dir, file.Go); err != nil {
				return nil, nil, err
			}
		}
		p, err = detect.Run(c.Context(), os.DirFS(dir), detect.Options{Target: merged.String("target"), AllowUnlocked: o.allowUnlocked, Go: goOpts}, builtin.Providers(), merged.String("provider"))
		if err != nil {
			return nil, nil, withFlagHints(err)
		}
	}
	if merged.String("provider") != "" {
		p.Evidence = append(p.Evidence, "provider chosen by "+merged.Origin("provider"))
	}
	merged.Apply(p)
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	return p, merged, nil
}

// readPlan reads a plan written by `packer plan --json` (possibly edited).
func readPlan(path string) (*plan.Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--plan: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var p plan.Plan
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("--plan %s: %w; write it with packer plan --json", path, err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("--plan %s: %w", path, err)
	}
	p.Evidence = append(p.Evidence, "plan read from "+filepath.Base(path))
	return &p, nil
}

func kvs(m map[string]string) []buildargs.KV {
	var out []buildargs.KV
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, buildargs.KV{Key: k, Value: m[k]})
	}
	return out
}

func newPlan(ro *rootOptions) *cobra.Command {
	o := &planOptions{}
	var asJSON bool
	c := &cobra.Command{
		Use:   "plan [DIR]",
		Short: "Print what packer would build for DIR (default .), and where each value came from",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			p, merged, err := o.makePlan(c, dir)
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
			return printExecutor(c, dir, p, merged)
		},
	}
	o.addFlags(c, false)
	c.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return c
}

func printPlan(w io.Writer, p *plan.Plan) {
	from := func(key string) string {
		if o := p.Origins[key]; o != "" {
			return "   (" + o + ")"
		}
		return ""
	}
	fmt.Fprintf(w, "provider:    %s\n", p.Provider)
	for _, e := range p.Evidence {
		fmt.Fprintf(w, "  because    %s\n", e)
	}
	fmt.Fprintf(w, "base:        %s%s\n", p.Base, from("base"))
	if len(p.Platforms) > 0 {
		fmt.Fprintf(w, "platforms:   %s%s\n", strings.Join(p.Platforms, ","), from("platforms"))
	}
	for _, s := range p.Steps {
		var args []string
		for _, a := range s.Run {
			if n := strings.Count(a, "\n"); n > 0 {
				a = fmt.Sprintf("'<script, %d lines: packer plan --json shows it>'", n+1)
			}
			args = append(args, a)
		}
		fmt.Fprintf(w, "step:        %s: %s\n", s.Name, strings.Join(args, " "))
	}
	if !p.System.Empty() {
		fmt.Fprintf(w, "system:      build %s; run %s (installed inside the image)%s\n", strings.Join(p.System.Build, " "), strings.Join(p.System.Run, " "), from("system.run")+from("system.build"))
	}
	for _, k := range slices.Sorted(maps.Keys(p.BuildArgs)) {
		fmt.Fprintf(w, "build arg:   %s=%s%s\n", k, p.BuildArgs[k], from("buildArgs."+k))
	}
	for _, l := range p.Layers {
		what := "everything"
		if len(l.Include) > 0 {
			what = strings.Join(l.Include, ", ")
		}
		fmt.Fprintf(w, "layer:       %s: %s from %s → %s\n", l.Name, what, l.From, l.Dest)
	}
	if len(p.Context) > 0 {
		fmt.Fprintf(w, "context:     %s%s\n", strings.Join(p.Context, " "), from("context"))
	}
	fmt.Fprintf(w, "entrypoint:  %s%s\n", strings.Join(p.Entrypoint, " "), from("entrypoint"))
	if len(p.Cmd) > 0 {
		fmt.Fprintf(w, "cmd:         %s%s\n", strings.Join(p.Cmd, " "), from("cmd"))
	}
	fmt.Fprintf(w, "workdir:     %s%s\n", p.WorkingDir, from("workingDir"))
	fmt.Fprintf(w, "user:        %s%s\n", p.User, from("user"))
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		fmt.Fprintf(w, "env:         %s=%s%s\n", k, p.Env[k], from("env."+k))
	}
	for _, port := range p.Ports {
		fmt.Fprintf(w, "port:        %d%s\n", port, from("ports"))
	}
	for _, v := range p.Volumes {
		fmt.Fprintf(w, "volume:      %s%s\n", v, from("volumes"))
	}
	if p.StopSignal != "" {
		fmt.Fprintf(w, "stop signal: %s%s\n", p.StopSignal, from("stopSignal"))
	}
	if p.Healthcheck != nil {
		fmt.Fprintf(w, "healthcheck: %s%s\n", strings.Join(p.Healthcheck.Test, " "), from("healthcheck"))
	}
	if p.HealthPath != "" {
		fmt.Fprintf(w, "readiness:   GET %s%s\n", p.HealthPath, from("healthPath"))
	}
	if p.LivenessPath != "" {
		fmt.Fprintf(w, "liveness:    GET %s%s\n", p.LivenessPath, from("livenessPath"))
	}
	for _, k := range slices.Sorted(maps.Keys(p.Labels)) {
		fmt.Fprintf(w, "label:       %s=%s%s\n", k, p.Labels[k], from("labels."+k))
	}
	for _, k := range slices.Sorted(maps.Keys(p.Annotations)) {
		fmt.Fprintf(w, "annotation:  %s=%s%s\n", k, p.Annotations[k], from("annotations."+k))
	}
}

// printExecutor says where the steps would run, per platform, and why.
// The image's runtime is the plan's here; the build reads the base's own.
func printExecutor(c *cobra.Command, dir string, p *plan.Plan, merged *config.Overrides) error {
	pls, err := config.ParsePlatforms(strings.Join(p.Platforms, ","))
	if err != nil {
		return err
	}
	mode := merged.String("executor")
	origin := "   (auto; --executor host|image chooses)"
	if mode != "" {
		origin = "   (" + merged.Origin("executor") + ")"
	}
	w := c.OutOrStdout()
	for _, pl := range pls {
		ch, err := builder.PlanChoice(c.Context(), dir, p, mode, pl)
		if err != nil {
			fmt.Fprintf(w, "executor:    %s: %v%s\n", pl.String(), err, origin)
			continue
		}
		note := ""
		if ch.Mode == builder.ModeImage && mode != builder.ModeImage {
			note = " (as planned; the build reads the base's own version and decides again)"
		}
		fmt.Fprintf(w, "executor:    %s: steps run %s%s%s\n", pl.String(), ch, note, origin)
	}
	return nil
}

// withFlagHints adds to a library's typed error the flag that fixes it:
// the libraries speak of settings, the CLI of its flags.
func withFlagHints(err error) error {
	var need *detect.NeedTargetError
	var bad *detect.BadTargetError
	switch {
	case errors.As(err, &need) && len(need.Choices) > 0:
		return fmt.Errorf("%w with --target DIR (or target in packer.toml), e.g. --target %s", err, need.Choices[0])
	case errors.As(err, &bad):
		return fmt.Errorf("--%w", err)
	}
	return err
}
