package cmd

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/packer-build/packer/internal/tmpdir"
)

// defaultCacheDir is packer's cache: $XDG_CACHE_HOME/packer.
func defaultCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache directory: %w; pass --cache-dir", err)
	}
	return filepath.Join(base, "packer"), nil
}

// prunable are the cache's parts rebuilt on demand at a cost in time
// only: the unpacked base root file systems and installed system
// packages the in-image executor runs on, and the package managers'
// download caches.
var prunable = []string{"rootfs", "system", "tool-cache"}

func newCache() *cobra.Command {
	c := &cobra.Command{Use: "cache", Short: "Manage packer's cache"}
	var dir string
	var all bool
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove the unpacked base images, installed system packages and download caches (--all: the whole cache)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" {
				d, err := defaultCacheDir()
				if err != nil {
					return err
				}
				dir = d
			}
			parts := prunable
			if all {
				parts = []string{"."}
			}
			for _, p := range parts {
				target := filepath.Join(dir, p)
				if _, err := os.Lstat(target); os.IsNotExist(err) {
					continue
				}
				if err := tmpdir.RemoveAll(target); err != nil {
					return fmt.Errorf("pruning %s: %w", target, err)
				}
				fmt.Fprintf(c.ErrOrStderr(), "packer: removed %s\n", target)
			}
			return nil
		},
	}
	prune.Flags().StringVar(&dir, "cache-dir", "", "cache directory (default: $XDG_CACHE_HOME/packer)")
	prune.Flags().BoolVar(&all, "all", false, "remove the whole cache, layers and step results too")
	c.AddCommand(prune)
	return c
}
