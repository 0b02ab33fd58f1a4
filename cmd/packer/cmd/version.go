package cmd

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/packer-build/packer/layers"
)

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print packer's version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintf(c.OutOrStdout(), "packer %s (%s, %s/%s, %s)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH, layers.Compressor())
			return nil
		},
	}
}
