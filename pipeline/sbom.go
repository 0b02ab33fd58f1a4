package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/packer-build/packer/oci"
	"github.com/packer-build/packer/sbom"
)

// SBOMTypes are the SBOM formats, with their media types and file
// extensions.
var SBOMTypes = map[string]struct{ MediaType, Ext string }{
	"spdx":      {sbom.SPDXType, "spdx.json"},
	"cyclonedx": {sbom.CycloneDXType, "cdx.json"},
}

// makeSBOMs scans each platform image and returns the SBOM artifacts (OCI
// referrers) to publish with it, the complete documents by image digest
// (written to req.SBOM.Dir when set), and the documents to attest: the
// image's own, which names its layers' documents by checksum (see
// sbom.Documents), or the complete one with req.SBOM.Single.
func makeSBOMs(ctx context.Context, b *oci.Built, req Request, logf func(string, ...any)) (out []v1.Image, docs, attested map[v1.Hash]map[string][]byte, err error) {
	docs, attested = map[v1.Hash]map[string][]byte{}, map[v1.Hash]map[string][]byte{}
	if len(req.SBOM.Formats) == 0 {
		return nil, docs, attested, nil
	}
	type target struct {
		img  v1.Image
		desc *v1.Descriptor
		pl   string
	}
	var targets []target
	if len(b.Images) == 1 {
		d, err := partial.Descriptor(b.Images[0].Image)
		if err != nil {
			return nil, nil, nil, err
		}
		targets = append(targets, target{b.Images[0].Image, d, b.Images[0].Platform.String()})
	} else {
		idx, ok := b.Result.(v1.ImageIndex)
		if !ok {
			return nil, nil, nil, fmt.Errorf("a build for %d platforms is not an index", len(b.Images))
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, nil, nil, err
		}
		for i, d := range im.Manifests {
			dd := d
			targets = append(targets, target{b.Images[i].Image, &dd, d.Platform.String()})
		}
	}
	if dir := req.SBOM.Dir; dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, nil, fmt.Errorf("creating the SBOM directory: %w", err)
		}
	}
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, fmt.Errorf("scanning the image for its SBOM: %w", context.Cause(ctx))
		}
		comps, err := sbom.Scan(ctx, t.img, req.Store)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("scanning the image for its SBOM: %w", err)
		}
		ls, err := t.img.Layers()
		if err != nil {
			return nil, nil, nil, err
		}
		var digests []v1.Hash
		for _, l := range ls {
			d, err := l.Digest()
			if err != nil {
				return nil, nil, nil, err
			}
			digests = append(digests, d)
		}
		sub := sbom.Subject{Name: req.SBOM.Name, Digest: t.desc.Digest.String(), Created: req.Created, Tool: "packer " + req.Version}
		parts := 0
		for _, f := range req.SBOM.Formats {
			ft, ok := SBOMTypes[f]
			if !ok {
				return nil, nil, nil, fmt.Errorf("unknown SBOM format %q; use spdx or cyclonedx", f)
			}
			file := "sbom." + ft.Ext
			if len(targets) > 1 {
				file = strings.ReplaceAll(t.pl, "/", "-") + "." + ft.Ext
			}
			files, err := sbom.Documents(f, sub, comps, digests, file)
			if err != nil {
				return nil, nil, nil, err
			}
			raw := make([][]byte, len(files))
			for i, fl := range files {
				raw[i] = fl.Data
			}
			doc, err := sbom.Merge(f, raw)
			if err != nil {
				return nil, nil, nil, err
			}
			attach := files
			if req.SBOM.Single {
				attach = []sbom.File{{Name: file, Data: doc}}
			}
			parts = len(attach) - 1
			art, err := sbom.Artifact(*t.desc, ft.MediaType, attach, req.Created)
			if err != nil {
				return nil, nil, nil, err
			}
			out = append(out, art)
			if docs[t.desc.Digest] == nil {
				docs[t.desc.Digest] = map[string][]byte{}
				attested[t.desc.Digest] = map[string][]byte{}
			}
			docs[t.desc.Digest][f] = doc
			attested[t.desc.Digest][f] = attach[0].Data
			if req.SBOM.Dir != "" {
				if err := os.WriteFile(filepath.Join(req.SBOM.Dir, file), doc, 0o644); err != nil {
					return nil, nil, nil, fmt.Errorf("writing the SBOM file: %w", err)
				}
			}
		}
		how := "one document"
		switch {
		case parts == 1:
			how = "the image's document and 1 layer's"
		case parts > 1:
			how = fmt.Sprintf("the image's document and %d layers'", parts)
		}
		logf("%s SBOM: %d packages (%s; %s)", t.pl, len(comps), strings.Join(req.SBOM.Formats, ", "), how)
	}
	return out, docs, attested, nil
}
