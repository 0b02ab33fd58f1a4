package cmd

import (
	"context"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/registry"
	"github.com/packer-build/packer/sign"
)

// signerFor signs the result's digest and, for an index, each platform
// image's (as cosign sign --recursive does), and attests each of them:
// the SLSA provenance, and the SPDX and CycloneDX SBOMs of each image.
func signerFor(ctx context.Context, key *sign.Signer, res builder.Result, docs map[v1.Hash]map[string][]byte, info sign.BuildInfo) registry.Signer {
	return func(repo string) (map[string]v1.Image, error) {
		top, err := res.Digest()
		if err != nil {
			return nil, err
		}
		digests := []v1.Hash{top}
		if idx, ok := res.(v1.ImageIndex); ok {
			im, err := idx.IndexManifest()
			if err != nil {
				return nil, err
			}
			for _, d := range im.Manifests {
				digests = append(digests, d.Digest)
			}
		}
		prov, err := sign.Provenance(info)
		if err != nil {
			return nil, err
		}
		// Signatures carry the signing time, as cosign's do; attestation
		// images use the build's time so they are reproducible too.
		now := time.Now()
		out := map[string]v1.Image{}
		for _, d := range digests {
			sig, err := sign.SignatureImage(ctx, key, repo, d, now)
			if err != nil {
				return nil, err
			}
			out[sign.Tag(d)] = sig
			envs := map[string][]byte{}
			order := []string{sign.PredicateSLSA1}
			if envs[sign.PredicateSLSA1], err = sign.Envelope(key, repo, d, sign.PredicateSLSA1, prov); err != nil {
				return nil, err
			}
			for _, f := range []struct{ format, predicate string }{{"spdx", sign.PredicateSPDX}, {"cyclonedx", sign.PredicateCycloneDX}} {
				if doc := docs[d][f.format]; doc != nil {
					if envs[f.predicate], err = sign.Envelope(key, repo, d, f.predicate, doc); err != nil {
						return nil, err
					}
					order = append(order, f.predicate)
				}
			}
			att, err := sign.AttestationImage(ctx, key, envs, order, info.Created)
			if err != nil {
				return nil, err
			}
			out[sign.AttestationTag(d)] = att
		}
		return out, nil
	}
}

func baseAnnotation(res builder.Result, key string) string {
	var img v1.Image
	switch r := res.(type) {
	case v1.Image:
		img = r
	case v1.ImageIndex:
		im, err := r.IndexManifest()
		if err != nil || len(im.Manifests) == 0 {
			return ""
		}
		if img, err = r.Image(im.Manifests[0].Digest); err != nil {
			return ""
		}
	}
	m, err := img.Manifest()
	if err != nil {
		return ""
	}
	return m.Annotations[key]
}

func baseName(res builder.Result) string {
	return baseAnnotation(res, "org.opencontainers.image.base.name")
}

func baseDigest(res builder.Result) string {
	return baseAnnotation(res, "org.opencontainers.image.base.digest")
}
