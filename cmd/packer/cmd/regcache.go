package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/registry"
)

// cacheRef reads a --cache-from / --cache-to value: registry:REF, or
// buildx's type=registry,ref=REF.
func cacheRef(flag, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if ref, ok := strings.CutPrefix(v, "registry:"); ok && ref != "" {
		return ref, nil
	}
	if strings.HasPrefix(v, "type=") {
		kv := map[string]string{}
		for _, part := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(part, "=")
			kv[k] = val
		}
		if kv["type"] == "registry" && kv["ref"] != "" {
			return kv["ref"], nil
		}
	}
	return "", &UsageError{fmt.Errorf("%s %q: give registry:REPO:TAG (or buildx's type=registry,ref=REPO:TAG); packer's local cache is --cache-dir", flag, v)}
}

// useRegistryCache adopts the entries of the registry cache at ref into
// store, whose blobs are then fetched when a build looks their key up. A
// cache that cannot be read is a warning: the build goes on without it.
func useRegistryCache(ctx context.Context, log io.Writer, client *registry.Client, store *layers.Store, ref string) {
	idx, found, err := client.ReadCache(ctx, ref)
	switch {
	case err != nil:
		fmt.Fprintf(log, "packer: warning: registry cache %s: %v; building without it\n", ref, err)
		return
	case !found:
		fmt.Fprintf(log, "packer: registry cache %s is empty: a cold build (--cache-to fills it)\n", ref)
		return
	case idx.Compressor != store.Compressor():
		fmt.Fprintf(log, "packer: registry cache %s was written with %s, this build compresses with %s: its entries do not apply (a --cache-to from this build replaces them)\n", ref, idx.Compressor, store.Compressor())
		return
	}
	adopted := 0
	for k, blobs := range idx.Entries {
		if store.HasKey(k) {
			continue
		}
		ds := make([]layers.Descriptor, len(blobs))
		for i, b := range blobs {
			ds[i] = layers.Descriptor{Digest: b.Digest, DiffID: b.DiffID, Size: b.Size, MediaType: b.MediaType}
		}
		if err := store.Adopt(k, ds); err == nil {
			adopted++
		}
	}
	for k, b := range idx.Meta {
		_ = store.AdoptMeta(k, b) // a record that cannot be written is read again from the base
	}
	store.Fetch = func(ctx context.Context, d layers.Descriptor, w io.Writer) error {
		return client.FetchCacheBlob(ctx, ref, registry.CacheBlob{Digest: d.Digest, DiffID: d.DiffID, Size: d.Size}, w)
	}
	fmt.Fprintf(log, "packer: registry cache %s: %d entries, %d new to this machine (their layers are fetched when a step's inputs match)\n", ref, len(idx.Entries), adopted)
}

// saveRegistryCache merges what this build used into the registry cache at
// ref. A failure is a warning: the image is already published.
func saveRegistryCache(ctx context.Context, log io.Writer, client *registry.Client, store *layers.Store, ref string) {
	ours := map[string][]registry.CacheBlob{}
	for k, ds := range store.Used() {
		bs := make([]registry.CacheBlob, len(ds))
		for i, d := range ds {
			bs[i] = registry.CacheBlob{Digest: d.Digest, DiffID: d.DiffID, Size: d.Size, MediaType: d.MediaType}
		}
		ours[k] = bs
	}
	open := func(b registry.CacheBlob) (v1.Layer, error) {
		return store.Open(layers.Descriptor{Digest: b.Digest, DiffID: b.DiffID, Size: b.Size, MediaType: b.MediaType})
	}
	pushed, err := client.WriteCache(ctx, ref, store.Compressor(), ours, store.UsedMeta(), open)
	if err != nil {
		fmt.Fprintf(log, "packer: warning: writing the registry cache %s: %v\n", ref, err)
		return
	}
	fmt.Fprintf(log, "packer: registry cache %s: wrote this build's %d entries (%d layers uploaded, the others were there)\n", ref, len(ours), pushed)
}
