package cmd

import (
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/packer-build/packer/config"
	"github.com/packer-build/packer/pipeline"
	"github.com/packer-build/packer/publish"
	"github.com/packer-build/packer/registry"
	"github.com/packer-build/packer/sbom"
)

func newSBOM(ro *rootOptions) *cobra.Command {
	var format, platform string
	var reg registryFlags
	c := &cobra.Command{
		Use:   "sbom IMAGE",
		Short: "Print the SBOM attached to an image (a registry reference or oci:DIR[:TAG])",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ft, ok := pipeline.SBOMTypes[format]
			if !ok {
				return fmt.Errorf("invalid --format %q: use spdx or cyclonedx", format)
			}
			client, err := reg.client()
			if err != nil {
				return err
			}
			subject, referrers, fetch, err := resolveReferrers(c, client, args[0], platform)
			if err != nil {
				return err
			}
			im, err := referrers.IndexManifest()
			if err != nil {
				return err
			}
			for _, d := range im.Manifests {
				if d.ArtifactType != ft.MediaType {
					continue
				}
				art, err := fetch(d.Digest)
				if err != nil {
					return fmt.Errorf("fetching the SBOM %s: %w", d.Digest, err)
				}
				ls, err := art.Layers()
				if err != nil || len(ls) == 0 {
					return fmt.Errorf("SBOM artifact %s has no document", d.Digest)
				}
				// The image's document, then its layers' (packer build
				// --sbom-split): joined into one.
				var docs [][]byte
				for _, l := range ls {
					b, err := readBlob(l)
					if err != nil {
						return fmt.Errorf("fetching the SBOM %s: %w", d.Digest, err)
					}
					docs = append(docs, b)
				}
				doc, err := sbom.Merge(format, docs)
				if err != nil {
					return fmt.Errorf("joining the SBOM %s: %w", d.Digest, err)
				}
				_, err = c.OutOrStdout().Write(doc)
				return err
			}
			return fmt.Errorf("%s (%s) has no %s SBOM attached; build it with packer build --sbom %s", args[0], subject, format, format)
		},
	}
	c.Flags().StringVar(&format, "format", "spdx", "spdx or cyclonedx")
	c.Flags().StringVar(&platform, "platform", "", "for an index, the platform image (default: this machine's)")
	reg.add(c.Flags())
	return c
}

func readBlob(l v1.Layer) ([]byte, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// resolveReferrers finds the image (the platform's, for an index) and the
// artifacts that refer to it.
type indexManifester interface {
	IndexManifest() (*v1.IndexManifest, error)
}

func resolveReferrers(c *cobra.Command, client *registry.Client, ref, platform string) (v1.Hash, indexManifester, func(v1.Hash) (v1.Image, error), error) {
	pls, err := config.ParsePlatforms(platform)
	if err != nil {
		return v1.Hash{}, nil, nil, err
	}
	pl := pls[0]
	if strings.HasPrefix(ref, registry.LayoutPrefix) {
		dir, tag := registry.SplitLayoutRef(ref)
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			return v1.Hash{}, nil, nil, fmt.Errorf("%s is not an OCI layout: %w", dir, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return v1.Hash{}, nil, nil, err
		}
		var subject v1.Hash
		found := false
		for _, d := range im.Manifests {
			if n := d.Annotations["org.opencontainers.image.ref.name"]; n != "" && (tag == "" || n == tag) {
				subject, found = d.Digest, true
				if d.MediaType.IsIndex() {
					sub, err := idx.ImageIndex(d.Digest)
					if err != nil {
						return v1.Hash{}, nil, nil, err
					}
					if subject, err = platformDigest(sub, pl); err != nil {
						return v1.Hash{}, nil, nil, err
					}
				}
				break
			}
		}
		if !found {
			return v1.Hash{}, nil, nil, fmt.Errorf("no image tagged %q in %s", tag, dir)
		}
		// In a layout, referrers are listed in its referrers index (see
		// publish.ReferrersAnnotation); those naming the image as subject.
		candidates, err := publish.LayoutReferrers(dir)
		if err != nil {
			return v1.Hash{}, nil, nil, err
		}
		var refs []v1.Descriptor
		for _, d := range candidates {
			img, err := publish.LayoutImage(dir, d.Digest)
			if err != nil {
				continue
			}
			m, err := img.Manifest()
			if err == nil && m.Subject != nil && m.Subject.Digest == subject {
				refs = append(refs, d)
			}
		}
		return subject, staticIndex(refs), func(h v1.Hash) (v1.Image, error) { return publish.LayoutImage(dir, h) }, nil
	}
	r, err := client.ParseReference(ref)
	if err != nil {
		return v1.Hash{}, nil, nil, fmt.Errorf("invalid image %q: %w", ref, err)
	}
	opts := client.RemoteOptions(c.Context())
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return v1.Hash{}, nil, nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	subject := desc.Digest
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return v1.Hash{}, nil, nil, err
		}
		if subject, err = platformDigest(idx, pl); err != nil {
			return v1.Hash{}, nil, nil, err
		}
	}
	refs, err := remote.Referrers(r.Context().Digest(subject.String()), opts...)
	if err != nil {
		return v1.Hash{}, nil, nil, fmt.Errorf("listing referrers of %s: %w", ref, err)
	}
	fetch := func(h v1.Hash) (v1.Image, error) {
		return remote.Image(r.Context().Digest(h.String()), opts...)
	}
	return subject, refs, fetch, nil
}

func platformDigest(idx v1.ImageIndex, pl v1.Platform) (v1.Hash, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.Satisfies(pl) {
			return d.Digest, nil
		}
	}
	return v1.Hash{}, fmt.Errorf("the index has no %s image; pass --platform", pl.String())
}

// staticIndex is an in-memory index listing descriptors (enough for
// IndexManifest).
type staticIndex []v1.Descriptor

func (s staticIndex) IndexManifest() (*v1.IndexManifest, error) {
	return &v1.IndexManifest{SchemaVersion: 2, Manifests: s}, nil
}
