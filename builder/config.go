package builder

import (
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/plan"
)

// ImageConfig applies the plan to a base image's config for one platform:
// a pure function of its inputs (created is the image's time, labels are
// added after the plan's). It changes cfg in place.
func ImageConfig(cfg *v1.ConfigFile, p *plan.Plan, pl v1.Platform, created time.Time, extraLabels map[string]string) {
	cfg.Created = v1.Time{Time: created}
	cfg.OS, cfg.Architecture, cfg.Variant = pl.OS, pl.Architecture, pl.Variant
	c := &cfg.Config
	env := map[string]string{}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if _, ok := env["PATH"]; !ok {
		env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for k, v := range p.Env {
		env[k] = v
	}
	if p.User != "" {
		if _, ok := env["HOME"]; !ok || env["HOME"] == "/root" {
			env["HOME"] = NonRootHome
		}
	}
	c.Env = sortedKV(env)
	if len(p.Entrypoint) > 0 {
		// As in a Dockerfile, a new ENTRYPOINT resets the base's CMD.
		c.Entrypoint, c.Cmd = p.Entrypoint, nil
	}
	if len(p.Cmd) > 0 {
		c.Cmd = p.Cmd
	}
	if p.WorkingDir != "" {
		c.WorkingDir = p.WorkingDir
	}
	if p.User != "" {
		c.User = p.User
	}
	if len(p.Ports) > 0 {
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, port := range p.Ports {
			c.ExposedPorts[fmt.Sprintf("%d/tcp", port)] = struct{}{}
		}
	}
	if len(p.Volumes) > 0 {
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range p.Volumes {
			c.Volumes[v] = struct{}{}
		}
	}
	if p.StopSignal != "" {
		c.StopSignal = p.StopSignal
	}
	if h := p.Healthcheck; h != nil {
		c.Healthcheck = &v1.HealthConfig{Test: h.Test, Retries: h.Retries}
		c.Healthcheck.Interval, _ = time.ParseDuration(h.Interval)
		c.Healthcheck.Timeout, _ = time.ParseDuration(h.Timeout)
		c.Healthcheck.StartPeriod, _ = time.ParseDuration(h.StartPeriod)
	}
	labels := map[string]string{}
	for k, v := range c.Labels {
		labels[k] = v
	}
	for k, v := range p.Labels {
		labels[k] = v
	}
	for k, v := range extraLabels {
		labels[k] = v
	}
	if len(labels) > 0 {
		c.Labels = labels
	}
}
