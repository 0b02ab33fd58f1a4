// Command packer builds small, non-root, reproducible OCI images from
// Go, Node.js and Python projects without a Docker daemon or Dockerfile.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/packer-build/packer/cmd/packer/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cmd.New().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "packer: error:", err)
		os.Exit(1)
	}
}
