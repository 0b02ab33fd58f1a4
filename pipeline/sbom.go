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
// referrers) to publish with it, and the documents by image digest,
// writing the files to req.SBOM.Dir when set.
func makeSBOMs(ctx context.Context, b *oci.Built, req Request, logf func(string, ...any)) ([]v1.Image, map[v1.Hash]map[string][]byte, error) {
	docs := map[v1.Hash]map[string][]byte{}
	if len(req.SBOM.Formats) == 0 {
		return nil, docs, nil
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
			return nil, nil, err
		}
		targets = append(targets, target{b.Images[0].Image, d, b.Images[0].Platform.String()})
	} else {
		idx, ok := b.Result.(v1.ImageIndex)
		if !ok {
			return nil, nil, fmt.Errorf("a build for %d platforms is not an index", len(b.Images))
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, nil, err
		}
		for i, d := range im.Manifests {
			dd := d
			targets = append(targets, target{b.Images[i].Image, &dd, d.Platform.String()})
		}
	}
	if dir := req.SBOM.Dir; dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("creating the SBOM directory: %w", err)
		}
	}
	var out []v1.Image
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("scanning the image for its SBOM: %w", context.Cause(ctx))
		}
		comps, err := sbom.Scan(ctx, t.img, req.Store)
		if err != nil {
			return nil, nil, fmt.Errorf("scanning the image for its SBOM: %w", err)
		}
		sub := sbom.Subject{Name: req.SBOM.Name, Digest: t.desc.Digest.String(), Created: req.Created, Tool: "packer " + req.Version}
		for _, f := range req.SBOM.Formats {
			ft, ok := SBOMTypes[f]
			if !ok {
				return nil, nil, fmt.Errorf("unknown SBOM format %q; use spdx or cyclonedx", f)
			}
			var doc []byte
			if f == "spdx" {
				doc, err = sbom.SPDX(sub, comps)
			} else {
				doc, err = sbom.CycloneDX(sub, comps)
			}
			if err != nil {
				return nil, nil, err
			}
			file := "sbom." + ft.Ext
			if len(targets) > 1 {
				file = strings.ReplaceAll(t.pl, "/", "-") + "." + ft.Ext
			}
			art, err := sbom.Artifact(*t.desc, ft.MediaType, doc, file, req.Created)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, art)
			if docs[t.desc.Digest] == nil {
				docs[t.desc.Digest] = map[string][]byte{}
			}
			docs[t.desc.Digest][f] = doc
			if req.SBOM.Dir != "" {
				if err := os.WriteFile(filepath.Join(req.SBOM.Dir, file), doc, 0o644); err != nil {
					return nil, nil, fmt.Errorf("writing the SBOM file: %w", err)
				}
			}
		}
		logf("%s SBOM: %d packages (%s)", t.pl, len(comps), strings.Join(req.SBOM.Formats, ", "))
	}
	return out, docs, nil
}
