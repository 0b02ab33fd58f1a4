package builder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/plan"
)

// Executor runs the commands of a plan's steps: the seam where the host's
// toolchain (Host), a sandbox in the base image's own root file system, or
// a remote BuildKit plugs in. The builder does everything around it: the
// cache key, the staging copy, restoring earlier steps' outputs, and
// turning the step's output directory into layers. An executor only runs
// a command where it is told, and says how it went.
type Executor interface {
	// Probe runs a step's toolchain probe (plan.Step.Toolchain, such as
	// `go version`) where the step will run, and returns its combined
	// output, which becomes part of the step's cache key.
	Probe(ctx context.Context, p Probe) (string, error)
	// Run runs one step's command to completion. A non-nil error means
	// the step failed; its output went to r.Output.
	Run(ctx context.Context, r StepRun) error
}

// Probe is a toolchain probe as an executor sees it.
type Probe struct {
	Argv     []string
	Platform v1.Platform
	// Base is the resolved base image for Platform (nil for scratch and
	// packer's builtin static base).
	Base v1.Image
}

// StepRun is one step's command as an executor sees it.
type StepRun struct {
	// Step is the step as planned (for its name, Output and hints).
	Step plan.Step
	// Argv is Step.Run with the platform placeholders expanded.
	Argv []string
	// Env holds the build args and the step's own variables, KEY=VALUE,
	// sorted; the step's win over the build args.
	Env []string
	// SecretEnv holds the secrets' variables, KEY=VALUE. An executor
	// passes them to the command and writes them nowhere else.
	SecretEnv []string
	// Dir is the staging copy of the context, where the command runs and
	// leaves its output (under Step.Output).
	Dir string
	// Platform is the platform the step builds for.
	Platform v1.Platform
	// Base is the resolved base image for Platform (nil for scratch and
	// packer's builtin static base).
	Base v1.Image
	// Output receives the command's stdout and stderr.
	Output io.Writer
	// System are directories of system packages installed over Base for
	// the steps (top first), for executors that run inside the image.
	System []string
}

// Host runs steps with the toolchain on this machine's PATH, in the
// staging copy, with this process's environment plus the step's.
type Host struct{}

var _ Executor = Host{}

// Probe implements Executor.
func (Host) Probe(ctx context.Context, p Probe) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, p.Argv[0], p.Argv[1:]...)
	killGroup(cmd)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Run implements Executor.
func (Host) Run(ctx context.Context, r StepRun) error {
	cmd := exec.CommandContext(ctx, r.Argv[0], r.Argv[1:]...)
	killGroup(cmd)
	cmd.Dir = r.Dir
	cmd.Env = append(append(os.Environ(), r.SecretEnv...), r.Env...)
	cmd.Stdout, cmd.Stderr = r.Output, r.Output
	return waitErr(ctx, cmd.Run())
}

// waitErr treats a command that succeeded but left a process holding its
// output (a daemon it started) as having succeeded: Wait stopped
// waiting for that output after WaitDelay.
func waitErr(ctx context.Context, err error) error {
	if errors.Is(err, exec.ErrWaitDelay) && ctx.Err() == nil {
		return nil
	}
	return err
}

// killGroup makes a cancelled step stop at once: the command runs in a
// process group of its own, which is killed whole (a shell's children
// too, which would otherwise keep its output open and the build waiting
// for them), and Wait gives up on the output a second later.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
}
