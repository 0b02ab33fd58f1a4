package cmd

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/sbom"
)

var sbomTypes = map[string]struct{ mediaType, ext string }{
	"spdx":      {sbom.SPDXType, "spdx.json"},
	"cyclonedx": {sbom.CycloneDXType, "cdx.json"},
}

func parseSBOMFormats(s string) ([]string, error) {
	if s == "none" || s == "" {
		return nil, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if _, ok := sbomTypes[f]; !ok {
			return nil, fmt.Errorf("invalid --sbom %q: use spdx, cyclonedx, both comma separated, or none", f)
		}
		out = append(out, f)
	}
	return out, nil
}

func firstName(tags []name.Tag, dir string) string {
	if len(tags) > 0 {
		return strings.TrimSuffix(tags[0].String(), ":"+tags[0].TagStr())
	}
	abs, _ := filepath.Abs(dir)
	return filepath.Base(abs)
}

// makeSBOMs scans each platform image and returns the SBOM artifacts (OCI
// referrers) to publish with it, writing the files to dir when set.
func makeSBOMs(res builder.Result, platforms []v1.Platform, formats []string, dir string, created time.Time, imgName string, cache sbom.Cache, log io.Writer) ([]v1.Image, map[v1.Hash]map[string][]byte, error) {
	docs := map[v1.Hash]map[string][]byte{}
	if len(formats) == 0 {
		return nil, docs, nil
	}
	type target struct {
		img  v1.Image
		desc *v1.Descriptor
		pl   string
	}
	var targets []target
	switch r := res.(type) {
	case v1.Image:
		d, err := partial.Descriptor(r)
		if err != nil {
			return nil, nil, err
		}
		targets = append(targets, target{r, d, platforms[0].String()})
	case v1.ImageIndex:
		im, err := r.IndexManifest()
		if err != nil {
			return nil, nil, err
		}
		for _, d := range im.Manifests {
			img, err := r.Image(d.Digest)
			if err != nil {
				return nil, nil, err
			}
			dd := d
			targets = append(targets, target{img, &dd, d.Platform.String()})
		}
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("--sbom-dir: %w", err)
		}
	}
	var out []v1.Image
	for _, t := range targets {
		comps, err := sbom.Scan(t.img, cache)
		if err != nil {
			return nil, nil, fmt.Errorf("scanning the image for its SBOM: %w", err)
		}
		sub := sbom.Subject{Name: imgName, Digest: t.desc.Digest.String(), Created: created, Tool: "packer " + version()}
		for _, f := range formats {
			var doc []byte
			if f == "spdx" {
				doc, err = sbom.SPDX(sub, comps)
			} else {
				doc, err = sbom.CycloneDX(sub, comps)
			}
			if err != nil {
				return nil, nil, err
			}
			file := "sbom." + sbomTypes[f].ext
			if len(targets) > 1 {
				file = strings.ReplaceAll(t.pl, "/", "-") + "." + sbomTypes[f].ext
			}
			art, err := sbom.Artifact(*t.desc, sbomTypes[f].mediaType, doc, file, created)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, art)
			if docs[t.desc.Digest] == nil {
				docs[t.desc.Digest] = map[string][]byte{}
			}
			docs[t.desc.Digest][f] = doc
			if dir != "" {
				if err := os.WriteFile(filepath.Join(dir, file), doc, 0o644); err != nil {
					return nil, nil, fmt.Errorf("--sbom-dir: %w", err)
				}
			}
		}
		fmt.Fprintf(log, "packer: %s SBOM: %d packages (%s)\n", t.pl, len(comps), strings.Join(formats, ", "))
	}
	return out, docs, nil
}
