// Command packer builds small, non-root, reproducible OCI images from
// Go, Node.js and Python projects without a Docker daemon or Dockerfile.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/packer-build/packer/cmd/packer/cmd"
)

// interrupted is the cause of the context's cancellation on a signal.
type interrupted struct{ sig os.Signal }

func (i *interrupted) Error() string { return "interrupted by " + sigName(i.sig) }

func sigName(s os.Signal) string {
	if s == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "SIGINT"
}

// exitCode is the shell's convention for a process ended by a signal.
func exitCode(s os.Signal) int {
	if s == syscall.SIGTERM {
		return 128 + int(syscall.SIGTERM)
	}
	return 128 + int(syscall.SIGINT)
}

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		// Every stage stops at its next chunk, removes its temp files and
		// returns; a second signal does not wait for that.
		cancel(&interrupted{s})
		s = <-sigs
		fmt.Fprintf(os.Stderr, "packer: %s again: stopping now\n", sigName(s))
		os.Exit(exitCode(s))
	}()
	err := cmd.New().ExecuteContext(ctx)
	signal.Stop(sigs)
	var in *interrupted
	if err != nil && errors.As(context.Cause(ctx), &in) {
		fmt.Fprintln(os.Stderr, "packer: error:", err)
		fmt.Fprintf(os.Stderr, "packer: %s; stopped before publishing what was not yet written\n", in.Error())
		os.Exit(exitCode(in.sig))
	}
	cancel(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "packer: error:", err)
		os.Exit(cmd.ExitCode(err))
	}
}
