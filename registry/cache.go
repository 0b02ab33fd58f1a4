package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The registry cache (--cache-to / --cache-from registry:REF) is an OCI
// artifact at REF: its config is a CacheIndex (each cache key, as the
// local cache names it, and the blobs of its layers), its layers are those
// blobs. A fresh machine adopts the entries and fetches a blob only when a
// build looks its key up.
const (
	CacheArtifactType = "application/vnd.dev.packer.cache.v1"
	cacheConfigType   = types.MediaType("application/vnd.dev.packer.cache.config.v1+json")
	// MaxCacheEntries bounds the index: this build's entries first, then
	// the ones already there.
	MaxCacheEntries = 1000
)

// CacheBlob is one layer blob of a cache entry.
type CacheBlob struct {
	Digest v1.Hash `json:"digest"`
	DiffID v1.Hash `json:"diffID"`
	Size   int64   `json:"size"`
	// MediaType is set for zstd layers; empty means gzip.
	MediaType types.MediaType `json:"mediaType,omitempty"`
}

// CacheIndex is the registry cache's config blob.
type CacheIndex struct {
	Version int `json:"version"`
	// Compressor is layers.Compressor() of the writer: entries made with
	// another compressor are keyed differently, and are dropped on merge.
	Compressor string                 `json:"compressor"`
	Entries    map[string][]CacheBlob `json:"entries"`
	// Meta are small records keyed as the local cache keys them: facts
	// and the SBOM scan of a base, so a fresh machine does not read the
	// base's files again.
	Meta map[string][]byte `json:"meta,omitempty"`
}

// ReadCache reads the cache index at ref; a ref that does not exist yet is
// an empty index (found=false).
func (c *Client) ReadCache(ctx context.Context, ref string) (idx *CacheIndex, found bool, err error) {
	r, err := c.ParseReference(ref)
	if err != nil {
		return nil, false, fmt.Errorf("registry cache %q: %w", ref, err)
	}
	img, err := remote.Image(r, c.RemoteOptions(ctx)...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return &CacheIndex{Version: 1, Entries: map[string][]CacheBlob{}}, false, nil
	}
	if err != nil {
		return nil, false, explain("reading the registry cache "+ref, r.Context().RegistryStr(), err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, false, explain("reading the registry cache "+ref, r.Context().RegistryStr(), err)
	}
	idx = &CacheIndex{}
	if err := json.Unmarshal(raw, idx); err != nil || idx.Version != 1 {
		return nil, false, fmt.Errorf("registry cache %s is not packer's cache (version %d, %v): point --cache-from at a tag packer wrote with --cache-to", ref, idx.Version, err)
	}
	if idx.Entries == nil {
		idx.Entries = map[string][]CacheBlob{}
	}
	return idx, true, nil
}

// FetchCacheBlob copies blob b of the cache at ref's repository into w.
func (c *Client) FetchCacheBlob(ctx context.Context, ref string, b CacheBlob, w io.Writer) error {
	r, err := c.ParseReference(ref)
	if err != nil {
		return err
	}
	l, err := remote.Layer(r.Context().Digest(b.Digest.String()), c.RemoteOptions(ctx)...)
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return explain("fetching "+b.Digest.String()+" from the registry cache", r.Context().RegistryStr(), err)
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// WriteCache merges this build's entries (ours, which win) into the index
// at ref and pushes it: first the blobs the registry lacks (open gives a
// local layer for a blob; remote entries' blobs are there already), then
// the artifact, tagged ref last. Two CI jobs writing at once each merge
// what they read: per key the last writer wins, and neither corrupts the
// index (a tag moves atomically to a complete artifact).
func (c *Client) WriteCache(ctx context.Context, ref, compressor string, ours map[string][]CacheBlob, ourMeta map[string][]byte, open func(CacheBlob) (v1.Layer, error)) (int, error) {
	r, err := c.ParseReference(ref)
	if err != nil {
		return 0, fmt.Errorf("registry cache %q: %w", ref, err)
	}
	tag, ok := r.(name.Tag)
	if !ok {
		return 0, fmt.Errorf("--cache-to registry:%s: name a tag (REPO:TAG), not a digest", ref)
	}
	old, _, err := c.ReadCache(ctx, ref)
	if err != nil {
		return 0, err
	}
	merged := &CacheIndex{Version: 1, Compressor: compressor, Entries: map[string][]CacheBlob{}, Meta: map[string][]byte{}}
	for k, v := range ours {
		merged.Entries[k] = v
	}
	for k, v := range ourMeta {
		merged.Meta[k] = v
	}
	for k, v := range old.Meta {
		if _, mine := merged.Meta[k]; !mine && len(merged.Meta) < MaxCacheEntries {
			merged.Meta[k] = v
		}
	}
	if old.Compressor == compressor {
		keys := make([]string, 0, len(old.Entries))
		for k := range old.Entries {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if len(merged.Entries) >= MaxCacheEntries {
				break
			}
			if _, mine := merged.Entries[k]; !mine {
				merged.Entries[k] = old.Entries[k]
			}
		}
	}
	opts := c.RemoteOptions(ctx)
	repo := tag.Context()
	var layers []v1.Descriptor
	seen := map[v1.Hash]bool{}
	pushed := 0
	for _, k := range slices.Sorted(maps.Keys(merged.Entries)) {
		for _, b := range merged.Entries[k] {
			if seen[b.Digest] {
				continue
			}
			seen[b.Digest] = true
			mt := b.MediaType
			if mt == "" {
				mt = types.OCILayer
			}
			layers = append(layers, v1.Descriptor{MediaType: mt, Digest: b.Digest, Size: b.Size})
			if _, mine := ours[k]; !mine {
				continue // an entry already in the registry: its blob is there
			}
			if _, err := remote.Head(repo.Digest(b.Digest.String()), opts...); err == nil {
				continue
			}
			l, err := open(b)
			if err != nil {
				return pushed, fmt.Errorf("registry cache: layer %s: %w", b.Digest, err)
			}
			if err := remote.WriteLayer(repo, l, opts...); err != nil {
				return pushed, explain("pushing to the registry cache "+ref, repo.RegistryStr(), err)
			}
			pushed++
		}
	}
	cfg, err := json.Marshal(merged)
	if err != nil {
		return pushed, err
	}
	cfgLayer := static.NewLayer(cfg, cacheConfigType)
	if err := remote.WriteLayer(repo, cfgLayer, opts...); err != nil {
		return pushed, explain("pushing to the registry cache "+ref, repo.RegistryStr(), err)
	}
	cd, _ := cfgLayer.Digest()
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: CacheArtifactType,
		Config: v1.Descriptor{MediaType: cacheConfigType, Digest: cd, Size: int64(len(cfg))},
		Layers: layers,
	}
	if len(m.Layers) == 0 {
		m.Layers = []v1.Descriptor{} // the field is required
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return pushed, err
	}
	if err := remote.Put(tag, rawManifest{raw: raw, mt: types.OCIManifestSchema1}, opts...); err != nil {
		return pushed, explain("pushing to the registry cache "+ref, repo.RegistryStr(), err)
	}
	return pushed, nil
}

// rawManifest is a manifest to put as it is.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return bytes.Clone(m.raw), nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }
