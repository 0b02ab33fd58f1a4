package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/layers"
)

const refNameAnnotation = "org.opencontainers.image.ref.name"

// Push uploads the result to each tag's repository — blobs, then the
// manifest by digest — and only then moves the tags, so a failed push
// never leaves a tag pointing at a partial image. It returns the digest
// references pushed.
//
// referrers (SBOM artifacts whose subject is the result or one of its
// images) are pushed after the result and before the tags.
func (c *Client) Push(ctx context.Context, res builder.Result, tags []name.Tag, referrers ...v1.Image) ([]name.Digest, error) {
	return c.PushSigned(ctx, res, tags, nil, referrers...)
}

// Signer returns the images to store under extra tags of a repository
// (cosign's sha256-DIGEST.sig and .att), by tag.
type Signer func(repo string) (map[string]v1.Image, error)

// PushSigned is Push that also stores the signer's images (cosign
// signatures and attestations) in each repository, before the tags move.
func (c *Client) PushSigned(ctx context.Context, res builder.Result, tags []name.Tag, sign Signer, referrers ...v1.Image) ([]name.Digest, error) {
	d, err := res.Digest()
	if err != nil {
		return nil, err
	}
	opts := c.RemoteOptions(ctx)
	// Signatures are made first: signing can fail (a transparency log or
	// certificate authority out of reach), and then nothing is pushed.
	var repos []name.Repository
	signatures := map[string]map[string]v1.Image{}
	for _, t := range tags {
		repo := t.Context()
		if _, seen := signatures[repo.String()]; seen {
			continue
		}
		signatures[repo.String()] = nil
		repos = append(repos, repo)
		if sign != nil {
			extra, err := sign(repo.Name())
			if err != nil {
				return nil, err
			}
			signatures[repo.String()] = extra
		}
	}
	var pushed []name.Digest
	for _, repo := range repos {
		dig := repo.Digest(d.String())
		if err := write(dig, res, opts); err != nil {
			return nil, explain("pushing to "+repo.String(), repo.RegistryStr(), err)
		}
		for _, r := range referrers {
			rd, err := r.Digest()
			if err != nil {
				return nil, err
			}
			if err := remote.Write(repo.Digest(rd.String()), r, opts...); err != nil {
				return nil, explain("pushing the SBOM to "+repo.String(), repo.RegistryStr(), err)
			}
		}
		if extra := signatures[repo.String()]; extra != nil {
			for _, tag := range slices.Sorted(maps.Keys(extra)) {
				if err := remote.Write(repo.Tag(tag), extra[tag], opts...); err != nil {
					return nil, explain("pushing the signature to "+repo.String(), repo.RegistryStr(), err)
				}
			}
		}
		pushed = append(pushed, dig)
	}
	for _, t := range tags {
		if err := remote.Tag(t, res.(remote.Taggable), opts...); err != nil {
			return nil, explain("tagging "+t.String(), t.RegistryStr(), err)
		}
	}
	return pushed, nil
}

func write(ref name.Reference, res builder.Result, opts []remote.Option) error {
	switch r := res.(type) {
	case v1.ImageIndex:
		return remote.WriteIndex(ref, r, opts...)
	case v1.Image:
		return remote.Write(ref, r, opts...)
	}
	return fmt.Errorf("cannot push %T", res)
}

// WriteLayout writes the result into the OCI layout at dir, tagged with
// each tag's identifier (org.opencontainers.image.ref.name), replacing
// images that had those tags. A new layout is written beside dir and
// renamed into place; in an existing layout blobs are added first and
// index.json is replaced atomically last, so a failure leaves no
// half-written layout.
//
// referrers are added to the layout's index.json untagged, as the OCI
// image layout keeps artifacts that refer to an image.
func WriteLayout(dir string, res builder.Result, tags []string, referrers ...v1.Image) error {
	if len(tags) == 0 {
		tags = []string{name.DefaultTag}
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, fs.ErrNotExist) {
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			return fmt.Errorf("output %s exists and is not an OCI layout; choose an empty or new directory", dir)
		}
		if err := ensureDir(dir); err != nil {
			return fmt.Errorf("creating output directory: %w", err)
		}
		tmp, err := os.MkdirTemp(filepath.Dir(dir), ".packer-layout-*")
		if err != nil {
			return fmt.Errorf("creating output directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		if err := writeLayout(tmp, res, tags, true, referrers); err != nil {
			return err
		}
		os.Remove(dir) // an empty directory may stand in the way
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("moving the layout into place: %w", err)
		}
		return nil
	}
	return writeLayout(dir, res, tags, false, referrers)
}

func writeLayout(dir string, res builder.Result, tags []string, fresh bool, referrers []v1.Image) error {
	var p layout.Path
	var err error
	if fresh {
		p, err = layout.Write(dir, empty.Index)
	} else {
		p, err = layout.FromPath(dir)
	}
	if err != nil {
		return fmt.Errorf("opening OCI layout %s: %w", dir, err)
	}
	switch r := res.(type) {
	case v1.ImageIndex:
		err = p.WriteIndex(r)
	case v1.Image:
		err = p.WriteImage(r)
	default:
		err = fmt.Errorf("cannot write %T", res)
	}
	if err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	desc, err := partial.Descriptor(res.(partial.Describable))
	if err != nil {
		return err
	}
	// Tools that pick an image by platform (syft, podman) need it on the
	// descriptor.
	if img, ok := res.(v1.Image); ok {
		if cfg, err := img.ConfigFile(); err == nil && cfg.OS != "" {
			desc.Platform = &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
		}
	}
	tagSet := map[string]bool{}
	for _, t := range tags {
		tagSet[t] = true
	}
	// Images losing their tag here take their referrers (SBOMs) with them,
	// unless another tag still points at them.
	old, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	replaced, kept := map[v1.Hash]bool{}, map[v1.Hash]bool{}
	for _, d := range old.Manifests {
		if n := d.Annotations[refNameAnnotation]; n != "" {
			if tagSet[n] {
				replaced[d.Digest] = true
			} else {
				kept[d.Digest] = true
			}
		}
	}
	staleReferrer := func(d v1.Descriptor) bool {
		if d.ArtifactType == "" || d.Annotations[refNameAnnotation] != "" {
			return false
		}
		img, err := p.Image(d.Digest)
		if err != nil {
			return false
		}
		m, err := img.Manifest()
		return err == nil && m.Subject != nil && replaced[m.Subject.Digest] && !kept[m.Subject.Digest]
	}
	idx = mutate.RemoveManifests(idx, func(d v1.Descriptor) bool { return tagSet[d.Annotations[refNameAnnotation]] || staleReferrer(d) })
	var adds []mutate.IndexAddendum
	for _, t := range tags {
		dd := *desc
		dd.Annotations = map[string]string{refNameAnnotation: t}
		adds = append(adds, mutate.IndexAddendum{Add: res.(mutate.Appendable), Descriptor: dd})
	}
	for _, r := range referrers {
		if err := p.WriteImage(r); err != nil {
			return fmt.Errorf("writing the SBOM to %s: %w", dir, err)
		}
		rd, err := partial.Descriptor(r)
		if err != nil {
			return err
		}
		var am struct {
			ArtifactType string `json:"artifactType"`
		}
		if raw, err := r.RawManifest(); err == nil {
			json.Unmarshal(raw, &am)
		}
		rd.ArtifactType = am.ArtifactType
		idx = mutate.RemoveManifests(idx, func(d v1.Descriptor) bool { return d.Digest == rd.Digest })
		adds = append(adds, mutate.IndexAddendum{Add: r, Descriptor: *rd})
	}
	idx = mutate.AppendManifests(idx, adds...)
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	raw, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return err
	}
	return layers.WriteFileAtomic(filepath.Join(dir, "index.json"), raw, 0o644)
}

// WriteTarball writes a docker-archive (what `docker save` writes and
// `docker load` reads) with the given tags, through a temp file renamed
// into place.
func WriteTarball(file string, res builder.Result, tags []name.Tag) error {
	img, ok := res.(v1.Image)
	if !ok {
		return fmt.Errorf("a docker-archive holds one platform's image; build one --platform for tar: output, or use oci: for several")
	}
	if err := ensureDir(file); err != nil {
		return err
	}
	refs := map[name.Reference]v1.Image{}
	for _, t := range tags {
		refs[t] = img
	}
	if len(refs) == 0 {
		return fmt.Errorf("tar: output needs a tag so that docker load can name the image; pass -t NAME[:TAG]")
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".packer-tar-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	if err := tarball.MultiRefWrite(refs, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
