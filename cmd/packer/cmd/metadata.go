package cmd

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/pipeline"
)

// metadata is what --metadata-file writes: docker buildx's keys
// (containerimage.digest, containerimage.descriptor,
// containerimage.config.digest, image.name), so scripts written for
// buildx read it unchanged, plus packer's own under "packer.".
func metadata(res *pipeline.Result, tags []string) (map[string]any, error) {
	r := res.Built.Result
	mt, err := r.MediaType()
	if err != nil {
		return nil, err
	}
	size, err := r.Size()
	if err != nil {
		return nil, err
	}
	m := map[string]any{
		"containerimage.digest":     res.Digest.String(),
		"containerimage.descriptor": v1.Descriptor{MediaType: mt, Digest: res.Digest, Size: size},
	}
	if len(tags) > 0 {
		m["image.name"] = strings.Join(tags, ",")
	}
	type layer struct {
		Name   string `json:"name"`
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
		Reused bool   `json:"reused"`
	}
	type image struct {
		Platform string            `json:"platform"`
		Digest   string            `json:"digest"`
		Config   string            `json:"config"`
		Size     int64             `json:"size"`
		Base     map[string]string `json:"base,omitempty"`
		Layers   []layer           `json:"layers"`
		SBOM     map[string]string `json:"sbom,omitempty"`
		Packages int               `json:"sbomPackages,omitempty"`
		Executor string            `json:"executor,omitempty"`
	}
	var images []image
	for _, im := range res.Built.Images {
		d, err := im.Image.Digest()
		if err != nil {
			return nil, err
		}
		cfg, err := im.Image.ConfigName()
		if err != nil {
			return nil, err
		}
		img := image{Platform: im.Platform.String(), Digest: d.String(), Config: cfg.String()}
		if ls, err := im.Image.Layers(); err == nil {
			for _, l := range ls {
				if s, err := l.Size(); err == nil {
					img.Size += s
				}
			}
		}
		if im.Base != nil {
			img.Base = map[string]string{"name": im.Base.Name, "digest": im.Base.Digest.String()}
		}
		if res.Report != nil {
			for _, l := range res.Report.Layers[im.Platform.String()] {
				img.Layers = append(img.Layers, layer{Name: l.Name, Digest: l.Digest.String(), Size: l.Size, Reused: l.Cached})
			}
			if c, ok := res.Report.Executors[im.Platform.String()]; ok {
				img.Executor = c.String()
			}
		}
		for format, doc := range res.SBOMs[d] {
			if img.SBOM == nil {
				img.SBOM = map[string]string{}
			}
			img.SBOM[format] = fmt.Sprintf("sha256:%x", sha256.Sum256(doc))
			if format == "spdx" {
				var spdx struct {
					Packages []json.RawMessage `json:"packages"`
				}
				if json.Unmarshal(doc, &spdx) == nil {
					img.Packages = len(spdx.Packages)
				}
			}
		}
		images = append(images, img)
	}
	if len(images) == 1 {
		m["containerimage.config.digest"] = images[0].Config
	}
	m["packer.images"] = images
	var published []map[string]any
	for _, p := range res.Published {
		e := map[string]any{}
		if len(p.Refs) > 0 {
			var refs []string
			for _, r := range p.Refs {
				refs = append(refs, r.String())
			}
			e["refs"] = refs
		}
		if len(p.Tags) > 0 {
			e["tags"] = p.Tags
		}
		if p.Path != "" {
			e["path"] = p.Path
		}
		if len(p.Dropped) > 0 {
			e["dropped"] = p.Dropped
		}
		published = append(published, e)
	}
	m["packer.published"] = published
	if res.Signer != nil {
		s := map[string]any{"keyless": res.Signer.Cert != nil}
		if id, issuer := res.Signer.Identity(); id != "" {
			s["identity"], s["issuer"] = id, issuer
		}
		m["packer.signature"] = s
	}
	if res.Report != nil {
		m["packer.steps"] = map[string]int{"run": res.Report.StepsRun, "skipped": res.Report.StepsCached}
	}
	return m, nil
}

// imageID is what --iidfile writes, as docker does: the config digest of
// a single-platform image (docker's image ID once loaded), the index
// digest for several platforms.
func imageID(res *pipeline.Result) (string, error) {
	if len(res.Built.Images) == 1 {
		cfg, err := res.Built.Images[0].Image.ConfigName()
		return cfg.String(), err
	}
	return res.Digest.String(), nil
}

// checkResultFile fails early when a result file cannot be written: its
// directory must exist.
func checkResultFile(flag, path string) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return &UsageError{fmt.Errorf("%s %s: the directory %s does not exist; create it first", flag, path, dir)}
	}
	return nil
}

// writeResultFile writes b to path through a temp file renamed into
// place, so a reader never sees half of it.
func writeResultFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".packer-result-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeResults writes --metadata-file and --iidfile after a build.
func (o *buildOptions) writeResults(res *pipeline.Result) error {
	if o.metadataFile != "" {
		m, err := metadata(res, o.tags)
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		if err := writeResultFile(o.metadataFile, append(b, '\n')); err != nil {
			return fmt.Errorf("--metadata-file: %w", err)
		}
	}
	if o.iidFile != "" {
		id, err := imageID(res)
		if err != nil {
			return err
		}
		if err := writeResultFile(o.iidFile, []byte(id)); err != nil {
			return fmt.Errorf("--iidfile: %w", err)
		}
	}
	return nil
}
