package builder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/packer-build/packer/internal/tmpdir"
	"github.com/packer-build/packer/plan"
	"github.com/packer-build/packer/rootfs"
)

// InImage runs steps inside the base image's own root file system, so the
// image's Node.js, Python and system libraries do the work: the base is
// unpacked once per digest (rootfs.Cached) and seen through an overlay, so
// the cached tree never changes and what a step writes outside the app
// is thrown away. Each step gets fresh mount and PID namespaces
// (unshare), the staging copy at plan.AppDir, the host's resolv.conf and
// CA bundle, a tmpfs /tmp as HOME, and the secrets at their host paths.
// No daemon: it needs root (or unprivileged user namespaces) and
// unshare, mount and chroot from util-linux and coreutils.
type InImage struct {
	// CacheDir holds the unpacked root file systems.
	CacheDir string
	// CABundle is the host's CA bundle given to steps (package registries
	// behind a TLS-inspecting proxy); "" means the usual Debian path when
	// it exists.
	CABundle string
	// ToolCache is a host directory kept across builds for the package
	// managers' download caches (npm, pip, yarn, pnpm: XDG_CACHE_HOME), so
	// a cold step does not download what an earlier build did; "" gives
	// each step an empty one.
	ToolCache string
}

var _ Executor = InImage{}

// Probe implements Executor: the probe runs inside the image, and the
// base's digest is part of what it reports (a base update is a new key).
func (e InImage) Probe(ctx context.Context, p Probe) (string, error) {
	if p.Base == nil {
		return Host{}.Probe(ctx, p)
	}
	d, err := p.Base.Digest()
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	err = e.run(ctx, StepRun{Argv: p.Argv, Platform: p.Platform, Base: p.Base, Output: &out}, "")
	return "image " + d.String() + "\n" + out.String(), err
}

// Run implements Executor. A step without a base image to run in (scratch,
// the builtin static base) runs on the host.
func (e InImage) Run(ctx context.Context, r StepRun) error {
	if r.Base == nil {
		return Host{}.Run(ctx, r)
	}
	return e.run(ctx, r, r.Dir)
}

// sandboxScript sets up the step's view inside the new mount namespace and
// runs it chrooted; its arguments are the command.
const sandboxScript = `set -eu
LOWER=$PACKER_ROOTFS
if [ -n "${PACKER_LOWERS:-}" ]; then LOWER=$PACKER_LOWERS:$PACKER_ROOTFS; fi
mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$PACKER_UPPER,workdir=$PACKER_WORK" "$PACKER_SANDBOX/root"
R=$PACKER_SANDBOX/root
mount -t proc proc "$R/proc" 2>/dev/null || true
mkdir -p "$R/dev" && mount --rbind /dev "$R/dev"
mkdir -p "$R/tmp" && mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
if [ -n "${PACKER_STAGE:-}" ]; then mkdir -p "$R$PACKER_APPDIR" && mount --bind "$PACKER_STAGE" "$R$PACKER_APPDIR"; fi
if [ -f /etc/resolv.conf ]; then rm -f "$R/etc/resolv.conf"; touch "$R/etc/resolv.conf" && mount --bind /etc/resolv.conf "$R/etc/resolv.conf"; fi
if [ -n "${PACKER_CA:-}" ]; then touch "$R/etc/packer-ca.crt" && mount --bind "$PACKER_CA" "$R/etc/packer-ca.crt"; fi
if [ -n "${PACKER_TOOL_CACHE:-}" ]; then mkdir -p "$R/tmp/.cache" && mount --bind "$PACKER_TOOL_CACHE" "$R/tmp/.cache"; fi
if [ -n "${PACKER_SECRETS_DIR:-}" ]; then mkdir -p "$R$PACKER_SECRETS_DIR" && mount --bind "$PACKER_SECRETS_DIR" "$R$PACKER_SECRETS_DIR"; fi
for d in ${PACKER_TMPFS:-}; do mkdir -p "$R$d" && mount -t tmpfs tmpfs "$R$d"; done
printf '%s\n' "${PACKER_BINDS:-}" | while read -r src dst; do
  if [ -n "$src" ]; then mkdir -p "$R$dst" && mount --bind "$src" "$R$dst"; fi
done
cp "$PACKER_SANDBOX/env" "$R/tmp/.packer-env"
cd "$R"
exec chroot "$R" /usr/bin/env -i PATH=/usr/bin:/bin sh -c '. /tmp/.packer-env && rm -f /tmp/.packer-env && cd "$0" && exec "$@"' "$PACKER_WORKDIR" "$@"
`

func (e InImage) run(ctx context.Context, r StepRun, stage string) error {
	return e.sandbox(ctx, r, sandbox{stage: stage, lowers: r.System})
}

// sandbox is how one command sees the image: extra read-only layers over
// the base (top first), where its writes go (a persistent upper directory,
// else a throwaway one), the staging copy, tmpfs mounts and host
// directories bound in ("HOST DEST" pairs).
type sandbox struct {
	stage  string
	lowers []string
	upper  string
	tmpfs  []string
	binds  [][2]string
}

func (e InImage) sandbox(ctx context.Context, r StepRun, sb sandbox) error {
	for _, tool := range []string{"unshare", "mount", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("running steps inside the image needs %s (util-linux, coreutils): %w; install it, or use --executor host", tool, err)
		}
	}
	root, err := rootfs.Cached(ctx, r.Base, e.CacheDir)
	if err != nil {
		return fmt.Errorf("unpacking the base image for in-image steps: %w", err)
	}
	if e.ToolCache != "" {
		if err := os.MkdirAll(e.ToolCache, 0o755); err != nil {
			return fmt.Errorf("package manager cache for in-image steps: %w", err)
		}
	}
	box, err := tmpdir.Mkdir("", "packer-sandbox-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(box)
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(box, d), 0o755); err != nil {
			return err
		}
	}
	upper, work := filepath.Join(box, "upper"), filepath.Join(box, "work")
	if sb.upper != "" {
		// overlayfs wants its work directory on the upper's file system.
		upper, work = sb.upper, sb.upper+".work"
		if err := os.MkdirAll(work, 0o755); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	var binds strings.Builder
	for _, bd := range sb.binds {
		if strings.ContainsAny(bd[0]+bd[1], " \n") {
			return fmt.Errorf("cannot mount %q at %q inside the image: no spaces in paths here", bd[0], bd[1])
		}
		fmt.Fprintf(&binds, "%s %s\n", bd[0], bd[1])
	}
	env, err := e.env(r, root)
	if err != nil {
		return err
	}
	// The environment goes through a file of exports, read inside the
	// image, so values (secrets) never show on a command line.
	var exports strings.Builder
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&exports, "export %s='%s'\n", k, strings.ReplaceAll(v, "'", `'\''`))
	}
	if err := os.WriteFile(filepath.Join(box, "env"), []byte(exports.String()), 0o600); err != nil {
		return err
	}
	ca := e.CABundle
	if ca == "" {
		if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
			ca = "/etc/ssl/certs/ca-certificates.crt"
		}
	}
	cmd := exec.CommandContext(ctx, "unshare", append(append(unshareArgs(), "sh", "-c", sandboxScript, "sandbox"), r.Argv...)...)
	killGroup(cmd) // unshare --kill-child takes the namespace's processes with it
	cmd.Env = append(os.Environ(),
		"PACKER_ROOTFS="+root, "PACKER_SANDBOX="+box, "PACKER_STAGE="+sb.stage, "PACKER_APPDIR="+plan.AppDir,
		"PACKER_CA="+ca, "PACKER_SECRETS_DIR="+secretsDir(r.SecretEnv), "PACKER_WORKDIR="+workdir(sb.stage),
		"PACKER_TOOL_CACHE="+e.ToolCache, "PACKER_UPPER="+upper, "PACKER_WORK="+work,
		"PACKER_LOWERS="+strings.Join(sb.lowers, ":"), "PACKER_TMPFS="+strings.Join(sb.tmpfs, " "), "PACKER_BINDS="+binds.String())
	out := r.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := waitErr(ctx, cmd.Run()); err != nil {
		if nerr := namespacesErr(); nerr != nil {
			return fmt.Errorf("%w: running steps inside the image: %w", err, nerr)
		}
		return err
	}
	return nil
}

// env is the step's environment inside the image: the base's variables,
// then packer's (HOME on the tmpfs, the CA bundle for npm and pip), then
// the step's and the secrets'.
func (e InImage) env(r StepRun, root string) ([]string, error) {
	cfg, err := r.Base.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the base image's config: %w", err)
	}
	vars := map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	var order []string
	set := func(kv string) {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	order = append(order, "PATH")
	for _, kv := range cfg.Config.Env {
		set(kv)
	}
	for _, kv := range []string{"HOME=/tmp", "XDG_CACHE_HOME=/tmp/.cache", "NODE_EXTRA_CA_CERTS=/etc/packer-ca.crt", "PIP_CERT=/etc/packer-ca.crt", "SSL_CERT_FILE=/etc/packer-ca.crt", "npm_config_cache=/tmp/.cache/npm", "PIP_CACHE_DIR=/tmp/.cache/pip"} {
		set(kv)
	}
	// node-gyp compiles addons against the image's own Node.js headers
	// (the official images' /usr/local, Debian's /usr) instead of
	// downloading them.
nodedir:
	for _, d := range []string{"/usr/local", "/usr"} {
		for _, top := range append(slices.Clone(r.System), root) {
			if _, err := os.Stat(filepath.Join(top, d, "include", "node", "node_api.h")); err == nil {
				set("npm_config_nodedir=" + d)
				break nodedir
			}
		}
	}
	for _, kv := range append(append([]string{}, r.Env...), r.SecretEnv...) {
		set(kv)
	}
	var out []string
	for _, k := range order {
		if !envName.MatchString(k) {
			return nil, fmt.Errorf("variable name %q cannot be passed into the image; rename it", k)
		}
		out = append(out, k+"="+vars[k])
	}
	return out, nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// secretsDir is the host directory the secrets are mounted from, when the
// step has secrets.
func secretsDir(secretEnv []string) string {
	for _, kv := range secretEnv {
		if v, ok := strings.CutPrefix(kv, "PACKER_SECRETS="); ok {
			return v
		}
	}
	return ""
}

func workdir(stage string) string {
	if stage == "" {
		return "/"
	}
	return plan.AppDir
}
