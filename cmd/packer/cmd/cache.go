package cmd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/packer-build/packer/internal/tmpdir"
	"github.com/packer-build/packer/layers"
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
	c := &cobra.Command{Use: "cache", Short: "Manage packer's cache: list it, prune it"}
	var dir string
	cacheDir := func() (string, error) {
		if dir != "" {
			return dir, nil
		}
		return defaultCacheDir()
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the cache's entries (layers, unpacked bases, system packages, extracted trees, download caches, leftovers) with size and last use",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			d, err := cacheDir()
			if err != nil {
				return err
			}
			ents, err := layers.CacheEntries(d)
			if err != nil {
				return fmt.Errorf("reading the cache %s: %w", d, err)
			}
			w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KIND\tSIZE\tLAST USE\tPATH")
			totals := map[string]int64{}
			var total int64
			for i := len(ents) - 1; i >= 0; i-- { // most recently used first
				e := ents[i]
				rel, _ := filepath.Rel(d, e.Path)
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.Kind, units.BytesSize(float64(e.Size)), e.LastUse.UTC().Format(time.RFC3339), rel)
				totals[e.Kind] += e.Size
				total += e.Size
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "total %s in %d entries (%s)", units.BytesSize(float64(total)), len(ents), d)
			for _, k := range []string{layers.KindLayer, layers.KindRootfs, layers.KindSystem, layers.KindTree, layers.KindTool, layers.KindLeftover} {
				if totals[k] > 0 {
					fmt.Fprintf(c.OutOrStdout(), "; %s %s", k, units.BytesSize(float64(totals[k])))
				}
			}
			fmt.Fprintln(c.OutOrStdout())
			return nil
		},
	}
	var all bool
	var keep string
	var filters []string
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove the unpacked bases, installed system packages and download caches; --all: the whole cache; --keep-storage / --filter until=: the least recently used entries of any kind",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			d, err := cacheDir()
			if err != nil {
				return err
			}
			if keep != "" || len(filters) > 0 {
				var before time.Time
				var limit int64
				if keep != "" {
					if limit, err = units.RAMInBytes(keep); err != nil || limit <= 0 {
						return &UsageError{fmt.Errorf("--keep-storage %q: give a size such as 5GB or 500MiB", keep)}
					}
				}
				for _, f := range filters {
					k, v, _ := strings.Cut(f, "=")
					dur, err := time.ParseDuration(v)
					if k != "until" || err != nil || dur <= 0 {
						return &UsageError{fmt.Errorf("--filter %q: packer filters on until=DURATION (e.g. until=24h: entries not used in the last 24 hours)", f)}
					}
					before = time.Now().Add(-dur)
				}
				removed, err := layers.Prune(d, before, limit, time.Time{}, tmpdir.RemoveAll)
				report(c, removed)
				return err
			}
			parts := prunable
			if all {
				parts = []string{"."}
			}
			for _, p := range parts {
				target := filepath.Join(d, p)
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
	prune.Flags().BoolVar(&all, "all", false, "remove the whole cache, layers and step results too")
	prune.Flags().StringVar(&keep, "keep-storage", "", "remove the least recently used entries (of any kind) until the cache fits in this size, e.g. 5GB")
	prune.Flags().StringArrayVar(&filters, "filter", nil, "until=DURATION: remove entries not used for that long, e.g. until=168h")
	for _, sub := range []*cobra.Command{ls, prune} {
		sub.Flags().StringVar(&dir, "cache-dir", "", "cache directory (default: $XDG_CACHE_HOME/packer)")
	}
	c.AddCommand(ls, prune)
	return c
}

// report logs what a prune removed.
func report(c *cobra.Command, removed []layers.CacheEntry) {
	var freed int64
	for _, e := range removed {
		freed += e.Size
	}
	fmt.Fprintf(c.ErrOrStderr(), "packer: removed %d cache entries, %s freed\n", len(removed), units.BytesSize(float64(freed)))
}

// DefaultCacheMax is the cache's size limit after a build: the least
// recently used entries beyond it are removed (--cache-max, 0 keeps all).
const DefaultCacheMax = "10GiB"

// limitCache applies the build's cache size limit, keeping what the build
// used (everything used at or after start). Measuring the cache walks
// download caches and unpacked bases, so the default limit is checked at
// most once an hour (as git's auto gc); a limit the user set, every build.
func limitCache(dir, max string, explicit bool, start time.Time) ([]layers.CacheEntry, error) {
	limit, err := units.RAMInBytes(max)
	if err != nil || limit <= 0 {
		return nil, nil
	}
	stamp := filepath.Join(dir, ".last-limit")
	if st, err := os.Stat(stamp); err == nil && !explicit && time.Since(st.ModTime()) < time.Hour {
		return nil, nil
	}
	if err := os.WriteFile(stamp, nil, 0o644); err == nil {
		now := time.Now()
		_ = os.Chtimes(stamp, now, now) // a stamp not moved only means checking again next build
	}
	return layers.Prune(dir, time.Time{}, limit, start, tmpdir.RemoveAll)
}
