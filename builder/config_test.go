package builder

import (
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/plan"
)

func TestImageConfig(t *testing.T) {
	created := time.Unix(1700000000, 0).UTC()
	arm := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	base := func() *v1.ConfigFile {
		return &v1.ConfigFile{Config: v1.Config{
			Env: []string{"HOME=/root", "LANG=C.UTF-8"}, Cmd: []string{"bash"},
			Labels: map[string]string{"from": "base", "vendor": "debian"},
		}}
	}
	for _, tc := range []struct {
		description string
		plan        plan.Plan
		extra       map[string]string
		check       func(t *testing.T, c *v1.ConfigFile)
	}{
		{"platform, time and a default PATH", plan.Plan{}, nil, func(t *testing.T, c *v1.ConfigFile) {
			if c.Architecture != "arm64" || c.Variant != "v8" || !c.Created.Time.Equal(created) {
				t.Errorf("platform %s/%s, created %v", c.Architecture, c.Variant, c.Created)
			}
			if !reflect.DeepEqual(c.Config.Env, []string{"HOME=/root", "LANG=C.UTF-8", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}) {
				t.Errorf("env %v", c.Config.Env)
			}
			if !reflect.DeepEqual(c.Config.Cmd, []string{"bash"}) {
				t.Errorf("the base's cmd was dropped without a new entrypoint: %v", c.Config.Cmd)
			}
		}},
		{"a non-root user gets a HOME, sorted env wins over the base's", plan.Plan{User: plan.NonRootUser, Env: map[string]string{"LANG": "en_US.UTF-8", "A": "1"}}, nil, func(t *testing.T, c *v1.ConfigFile) {
			if c.Config.User != "65532:65532" || !reflect.DeepEqual(c.Config.Env, []string{"A=1", "HOME=/home/nonroot", "LANG=en_US.UTF-8", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}) {
				t.Errorf("user %q env %v", c.Config.User, c.Config.Env)
			}
		}},
		{"a new entrypoint resets the base's cmd", plan.Plan{Entrypoint: []string{"/app/server"}}, nil, func(t *testing.T, c *v1.ConfigFile) {
			if !reflect.DeepEqual(c.Config.Entrypoint, []string{"/app/server"}) || c.Config.Cmd != nil {
				t.Errorf("entrypoint %v cmd %v", c.Config.Entrypoint, c.Config.Cmd)
			}
		}},
		{"ports, volumes, workdir, stop signal", plan.Plan{Ports: []int{8080, 9090}, Volumes: []string{"/data"}, WorkingDir: "/app", StopSignal: "SIGINT"}, nil, func(t *testing.T, c *v1.ConfigFile) {
			if _, ok := c.Config.ExposedPorts["9090/tcp"]; !ok || len(c.Config.ExposedPorts) != 2 {
				t.Errorf("ports %v", c.Config.ExposedPorts)
			}
			if _, ok := c.Config.Volumes["/data"]; !ok || c.Config.WorkingDir != "/app" || c.Config.StopSignal != "SIGINT" {
				t.Errorf("volumes %v workdir %q stop %q", c.Config.Volumes, c.Config.WorkingDir, c.Config.StopSignal)
			}
		}},
		{"health check durations", plan.Plan{Healthcheck: &plan.Healthcheck{Test: []string{"CMD", "/app/x", "health"}, Interval: "10s", Timeout: "2s", StartPeriod: "1m", Retries: 5}}, nil, func(t *testing.T, c *v1.ConfigFile) {
			h := c.Config.Healthcheck
			if h == nil || h.Interval != 10*time.Second || h.Timeout != 2*time.Second || h.StartPeriod != time.Minute || h.Retries != 5 {
				t.Errorf("healthcheck %+v", h)
			}
		}},
		{"labels: base, then plan, then the build's", plan.Plan{Labels: map[string]string{"from": "plan", "title": "api"}}, map[string]string{"from": "build"}, func(t *testing.T, c *v1.ConfigFile) {
			want := map[string]string{"from": "build", "vendor": "debian", "title": "api"}
			if !reflect.DeepEqual(c.Config.Labels, want) {
				t.Errorf("labels %v, want %v", c.Config.Labels, want)
			}
		}},
	} {
		t.Run(tc.description, func(t *testing.T) {
			c := base()
			ImageConfig(c, &tc.plan, arm, created, tc.extra)
			tc.check(t, c)
		})
	}
}

// TestCheckUser: names must exist in the base (packer's nonroot always
// does), numbers always work, root is warned about.
func TestCheckUser(t *testing.T) {
	facts := &baseFacts{Passwd: []byte("root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n"), Group: []byte("root:x:0:\nnode:x:1000:\n")}
	for _, c := range []struct {
		user, base string
		facts      *baseFacts
		warn, err  string
	}{
		{"65532:65532", "scratch", nil, "", ""},
		{"node", "node:22", facts, "", ""},
		{"node:node", "node:22", facts, "", ""},
		{"nonroot", "node:22", facts, "", ""},
		{"abc:def", "node:22", facts, "", `user "abc" is not in the base image's /etc/passwd (node:22)`},
		{"node:staff", "node:22", facts, "", `group "staff" is not in the base image's /etc/group`},
		{"app", "scratch", nil, "", `user "app" is not in the base image's /etc/passwd (scratch)`},
		{"nonroot", "builtin:static", nil, "", ""},
		{"0", "node:22", facts, "runs as root", ""},
		{"root", "node:22", facts, "runs as root", ""},
	} {
		warn, err := checkUser(c.user, c.base, c.facts)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("checkUser(%q, %s) error %v, want %q", c.user, c.base, err, c.err)
		}
		if !strings.Contains(warn, c.warn) || c.warn == "" && warn != "" {
			t.Errorf("checkUser(%q, %s) warning %q, want %q", c.user, c.base, warn, c.warn)
		}
	}
}
