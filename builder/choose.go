package builder

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/plan"
)

// Where steps run: --executor, packer.toml's executor, PACKER_EXECUTOR.
const (
	ModeAuto  = "auto"
	ModeHost  = "host"
	ModeImage = "image"
)

// Auto is the default executor. For each platform, Build runs the steps
// inside the image (Image) when a runtime the plan needs differs between
// this machine and the base image (Python's major.minor, Node.js's major,
// or the C library), and the image executor can run here; otherwise on
// this machine (Host), the fast path. Build makes the choice before any
// step runs and logs it with its reason; Probe and Run, called outside a
// Build, use the host.
type Auto struct{ Image InImage }

var _ Executor = Auto{}

// Probe implements Executor (outside a Build: the host).
func (Auto) Probe(ctx context.Context, p Probe) (string, error) { return Host{}.Probe(ctx, p) }

// Run implements Executor (outside a Build: the host).
func (Auto) Run(ctx context.Context, r StepRun) error { return Host{}.Run(ctx, r) }

// Choice is where one platform's steps run, and why.
type Choice struct {
	// Mode is ModeHost or ModeImage.
	Mode string `json:"mode"`
	Why  string `json:"why"`
	// Fallback: the steps would have run in the image, but cannot here.
	Fallback bool `json:"fallback,omitempty"`
}

func (c Choice) String() string {
	where := "on this machine"
	if c.Mode == ModeImage {
		where = "inside the image"
	}
	return where + ": " + c.Why
}

// runtimeSide is one of the plan's runtimes as this machine and the image
// have it ("" when absent or unknown).
type runtimeSide struct {
	Name, Want, Host, Image string
}

// chooseIn is everything the choice depends on.
type chooseIn struct {
	mode     string
	runtimes []runtimeSide
	// hostMusl and baseMusl: the C library is musl (else glibc).
	hostMusl, baseMusl bool
	hasSteps           bool
	// noBase: scratch or the builtin static base, which hold no toolchain.
	noBase bool
	// unavailable says why the image executor cannot run here, or nil.
	unavailable error
	// system lists the plan's system packages: they install only inside
	// the image.
	system []string
}

// decide is the choice, from its inputs alone. An error means the user
// forced the image executor where it cannot run.
func decide(in chooseIn) (Choice, error) {
	switch {
	case in.mode == ModeHost:
		return Choice{Mode: ModeHost, Why: "asked for (executor host)"}, nil
	case len(in.system) > 0 && in.noBase:
		return Choice{}, fmt.Errorf("system packages (%s) are installed with the base's package manager, and this base has none: choose a Debian, Ubuntu or Alpine base", strings.Join(in.system, " "))
	case len(in.system) > 0 && in.unavailable != nil:
		return Choice{}, fmt.Errorf("system packages (%s) are installed inside the image, and steps cannot run inside the image here: %w; or use --executor host to skip them, if this machine and the base already have what they provide", strings.Join(in.system, " "), in.unavailable)
	case !in.hasSteps:
		return Choice{Mode: ModeHost, Why: "the plan has no steps"}, nil
	case in.noBase:
		return Choice{Mode: ModeHost, Why: "the base holds no toolchain to run them"}, nil
	case in.mode == ModeImage:
		if in.unavailable != nil {
			return Choice{}, fmt.Errorf("executor image: %w", in.unavailable)
		}
		return Choice{Mode: ModeImage, Why: "asked for (executor image)"}, nil
	}
	if len(in.system) > 0 {
		why := "the plan installs system packages (" + strings.Join(in.system, " ") + ")"
		if diffs, _ := compareRuntimes(in); len(diffs) > 0 {
			why += "; " + strings.Join(diffs, "; ")
		}
		return Choice{Mode: ModeImage, Why: why}, nil
	}
	if len(in.runtimes) == 0 {
		return Choice{Mode: ModeHost, Why: "no step depends on the image's runtime (Go builds for any platform)"}, nil
	}
	diffs, same := compareRuntimes(in)
	if len(diffs) == 0 {
		return Choice{Mode: ModeHost, Why: strings.Join(same, "; ")}, nil
	}
	why := strings.Join(diffs, "; ")
	if in.unavailable != nil {
		return Choice{Mode: ModeHost, Fallback: true, Why: why + ", but steps cannot run inside the image here (" + in.unavailable.Error() + "): they run on this machine, installing for the image's version where the package manager can (binary wheels, prebuilt addons)"}, nil
	}
	return Choice{Mode: ModeImage, Why: why}, nil
}

// compareRuntimes says how this machine's runtimes and C library differ
// from the image's (diffs), and which runtimes match (same). An image
// version the base does not tell is the plan's.
func compareRuntimes(in chooseIn) (diffs, same []string) {
	for _, r := range in.runtimes {
		img := r.Image
		if img == "" {
			img = r.Want
		}
		switch {
		case r.Host == "":
			diffs = append(diffs, fmt.Sprintf("this machine has no %s, the image has %s %s", r.Name, r.Name, img))
		case shortVersion(r.Host, r.Want) != shortVersion(img, r.Want):
			diffs = append(diffs, fmt.Sprintf("this machine has %s %s, the image %s %s", r.Name, r.Host, r.Name, img))
		default:
			same = append(same, fmt.Sprintf("this machine's %s %s matches the image's %s", r.Name, r.Host, img))
		}
	}
	if in.hostMusl != in.baseMusl {
		libc := map[bool]string{false: "glibc", true: "musl"}
		diffs = append(diffs, fmt.Sprintf("this machine's C library is %s, the image's %s", libc[in.hostMusl], libc[in.baseMusl]))
	}
	return diffs, same
}

// versionRe finds the first dotted number in a probe's output.
var versionRe = regexp.MustCompile(`\d+(\.\d+)*`)

// hostVersions runs each runtime's Host probe in dir (where a
// .python-version or .nvmrc picks the interpreter, as it will for the
// steps), or at / when it fails there; a runtime this machine lacks is "".
func hostVersions(ctx context.Context, dir string, rs []plan.BaseRuntime) map[string]string {
	out := map[string]string{}
	for _, r := range rs {
		if len(r.Host) == 0 {
			continue
		}
		for _, d := range []string{dir, "/"} {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			cmd := exec.CommandContext(ctx, r.Host[0], r.Host[1:]...)
			cmd.Dir = d
			b, err := cmd.Output()
			cancel()
			if err == nil {
				out[r.Name] = versionRe.FindString(string(b))
				break
			}
		}
	}
	return out
}

// hostMusl reports whether this machine's C library is musl.
func hostMusl() bool {
	m, _ := filepath.Glob("/lib/ld-musl-*.so.1")
	return len(m) > 0
}

// muslLoaders are where a musl base (Alpine) has its dynamic loader.
func muslLoaders() []string {
	var out []string
	for _, a := range plan.Archs {
		out = append(out, "lib/ld-musl-"+a.Uname+".so.1")
	}
	return append(out, "lib/ld-musl-armhf.so.1", "lib/ld-musl-x86.so.1", "lib/ld-musl-i386.so.1")
}

// qemuNames are qemu-user's names for the architectures whose uname -m
// differs from them.
var qemuNames = map[string]string{"arm": "arm", "386": "i386"}

// Available says why steps for pl cannot run inside an image on this
// machine, or nil: the tools it uses, the architecture (this machine's,
// or one qemu-user is registered for in binfmt_misc with the F flag, so
// the emulator works inside the image), and the privileges (root, or
// unprivileged user namespaces), tried once per process.
func (e InImage) Available(pl v1.Platform) error {
	for _, tool := range []string{"unshare", "mount", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("it needs %s (util-linux, coreutils): %w", tool, err)
		}
	}
	if pl.Architecture != runtime.GOARCH {
		if _, err := emulator(pl.Architecture); err != nil {
			return err
		}
	}
	return namespacesErr()
}

// Emulation names the qemu-user emulator binfmt_misc runs pl's binaries
// with, or "" when they run natively here (or not at all).
func Emulation(pl v1.Platform) string {
	if pl.Architecture == runtime.GOARCH {
		return ""
	}
	q, _ := emulator(pl.Architecture)
	return q
}

// binfmtDir is where the kernel lists binfmt_misc's registrations.
var binfmtDir = "/proc/sys/fs/binfmt_misc"

var (
	interpreterRe = regexp.MustCompile(`(?m)^interpreter (\S+)`)
	fixBinaryRe   = regexp.MustCompile(`(?m)^flags: \S*F`)
)

func emulator(goarch string) (string, error) {
	a, ok := plan.ArchOf(goarch)
	if !ok {
		return "", fmt.Errorf("unknown architecture %s", goarch)
	}
	name := a.Uname
	if q, ok := qemuNames[goarch]; ok {
		name = q
	}
	entries, _ := filepath.Glob(filepath.Join(binfmtDir, "*"))
	for _, f := range entries {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		interp := interpreterRe.FindStringSubmatch(s)
		if !strings.HasPrefix(s, "enabled") || interp == nil || filepath.Base(interp[1]) != "qemu-"+name && filepath.Base(interp[1]) != "qemu-"+name+"-static" {
			continue
		}
		if !fixBinaryRe.MatchString(s) {
			return "", fmt.Errorf("the image is for linux/%s; qemu-user is registered for it (%s) but without binfmt_misc's F flag, so it cannot run inside the image: register it with F (e.g. the qemu-user-static package)", goarch, interp[1])
		}
		return interp[1], nil
	}
	return "", fmt.Errorf("the image is for linux/%s and this machine is linux/%s, with no qemu-user registered in binfmt_misc for it", goarch, runtime.GOARCH)
}

var (
	nsOnce sync.Once
	nsErr  error
)

// namespacesErr tries, once, what each step does: new mount and PID
// namespaces, inside a user namespace when not root.
func namespacesErr() error {
	nsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		args := append(unshareArgs(), "true")
		out, err := exec.CommandContext(ctx, "unshare", args...).CombinedOutput()
		if err == nil {
			return
		}
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		if os.Geteuid() != 0 {
			nsErr = fmt.Errorf("it needs root or unprivileged user namespaces, and `unshare --user` failed here (%s): run as root, or allow user namespaces (sysctl user.max_user_namespaces=15000; kernel.unprivileged_userns_clone=1 on Debian kernels; kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu), or use --executor host", msg)
			return
		}
		nsErr = fmt.Errorf("it needs new mount and PID namespaces, and `unshare --mount --pid` failed here (%s): in a container, give it CAP_SYS_ADMIN (--privileged), or use --executor host", msg)
	})
	return nsErr
}

// unshareArgs are unshare's options for a step: a user namespace mapping
// this user to root when not root, then fresh mount and PID namespaces.
func unshareArgs() []string {
	var args []string
	if os.Geteuid() != 0 {
		args = append(args, "--user", "--map-root-user")
	}
	return append(args, "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private", "--")
}

// PlanChoice is where the steps of p would run for pl, as packer plan
// says it before any base is pulled: the image's runtime is taken to be
// the plan's (the build reads the base's own and decides again).
func PlanChoice(ctx context.Context, dir string, p *plan.Plan, mode string, pl v1.Platform) (Choice, error) {
	in := planChooseIn(p, mode, hostVersions(ctx, dir, p.BaseRuntimes), nil)
	if in.mode != ModeHost && (in.hasSteps || len(in.system) > 0) && !in.noBase {
		in.unavailable = InImage{}.Available(pl)
	}
	c, err := decide(in)
	if err == nil && c.Mode == ModeImage {
		if q := Emulation(pl); q != "" {
			c.Why += " (its binaries run through " + q + ", registered in binfmt_misc)"
		}
	}
	return c, err
}

func planChooseIn(p *plan.Plan, mode string, host, image map[string]string) chooseIn {
	if mode == "" {
		mode = ModeAuto
	}
	in := chooseIn{mode: mode, hasSteps: len(p.Steps) > 0, noBase: p.Base == plan.BaseScratch || p.Base == plan.BaseStatic, hostMusl: hostMusl()}
	if p.System != nil {
		in.system = append(slices.Clone(p.System.Run), p.System.Build...)
	}
	for _, r := range p.BaseRuntimes {
		if len(r.Host) == 0 {
			continue
		}
		in.runtimes = append(in.runtimes, runtimeSide{Name: r.Name, Want: r.Want, Host: host[r.Name], Image: image[r.Name]})
	}
	return in
}

// chooseExecutor sets b.exec for pl: Options.Executor as given, or, for
// Auto, what decide says, once the image has shown it can run the steps'
// toolchain probes (a base without pip or npm cannot).
func (b *builder) chooseExecutor(ctx context.Context, pl v1.Platform, base v1.Image, facts *baseFacts) error {
	hasSteps := len(b.plan.Steps) > 0
	auto, isAuto := b.opts.Executor.(Auto)
	if !isAuto {
		b.exec = b.opts.Executor
		c := Choice{Mode: executorName(b.exec), Why: "asked for (executor " + executorName(b.exec) + ")"}
		if img, ok := b.exec.(InImage); ok && hasSteps && runBase(base, b.plan.Base) != nil {
			if err := img.Available(pl); err != nil {
				return fmt.Errorf("steps run inside the image (executor image), but cannot here: %w", err)
			}
		}
		b.report.Executors[pl.String()] = c
		return nil
	}
	if b.hostHave == nil {
		b.hostHave = hostVersions(ctx, b.dir, b.plan.BaseRuntimes)
	}
	in := planChooseIn(b.plan, ModeAuto, b.hostHave, b.baseHave)
	if facts != nil {
		in.baseMusl = facts.Musl
	}
	if len(in.system) > 0 && !in.noBase {
		in.unavailable = auto.Image.Available(pl)
	}
	c, err := decide(in)
	if err != nil {
		return err
	}
	if c.Mode == ModeImage && in.unavailable == nil {
		if in.unavailable = auto.Image.Available(pl); in.unavailable != nil {
			if c, err = decide(in); err != nil {
				return err
			}
		}
	}
	b.exec = Host{}
	if c.Mode == ModeImage {
		b.exec = auto.Image
		if q := Emulation(pl); q != "" {
			c.Why += " (its binaries run through " + q + ", registered in binfmt_misc)"
		}
		for _, s := range b.plan.Steps {
			if len(s.Toolchain) == 0 {
				continue
			}
			if _, err := b.toolchain(ctx, s, pl, base); err != nil {
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
				if len(in.system) > 0 {
					return err // the packages install in the image, so the steps must run there
				}
				c = Choice{Mode: ModeHost, Fallback: true, Why: fmt.Sprintf("%s, but the image cannot run step %s's tools (`%s` fails in it): they run on this machine, installing for the image's version where the package manager can; a base with the build tools (the official node and python images have npm and pip) runs them in the image", c.Why, s.Name, strings.Join(s.Toolchain, " "))}
				b.exec = Host{}
				break
			}
		}
	}
	b.report.Executors[pl.String()] = c
	if hasSteps || len(in.system) > 0 {
		warn := ""
		if c.Fallback {
			warn = "warning: "
		}
		b.logf("%ssteps (%s) run %s", warn, pl.String(), c)
	}
	return nil
}
