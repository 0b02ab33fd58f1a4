package pipeline

import (
	"context"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/oci"
	"github.com/packer-build/packer/sign"
)

// Keyless signs with a short-lived Fulcio certificate for an ephemeral
// key, bought with an OIDC identity token fetched after the build (a
// GitHub Actions token lives minutes).
type Keyless struct {
	// Token is an explicit token or a file holding one; empty means the
	// environment's (SIGSTORE_ID_TOKEN, GitHub Actions).
	Token     string
	Getenv    func(string) string
	FulcioURL string
	// Tlog, when set, records the signatures in a Rekor log.
	Tlog *sign.Rekor
}

// Signer implements Signer.
func (k Keyless) Signer(ctx context.Context, logf func(string, ...any)) (*sign.Signer, error) {
	token, from, err := sign.IdentityToken(ctx, k.Token, k.Getenv)
	if err != nil {
		return nil, err
	}
	logf("keyless signing with the OIDC token from %s", from)
	s, err := sign.Keyless(ctx, k.FulcioURL, token, k.Tlog)
	if err != nil {
		return nil, err
	}
	id, iss := s.Identity()
	logf("Fulcio certified %s (issuer %s)", id, iss)
	return s, nil
}

// signatures signs the result's digest and, for an index, each platform
// image's (as cosign sign --recursive does), and attests each of them:
// the SLSA provenance, and the SPDX and CycloneDX SBOMs of each image (the
// image's document, which names its layers' by checksum). It
// returns the images to store in repo, by tag (cosign's sha256-DIGEST.sig
// and .att).
func signatures(ctx context.Context, key *sign.Signer, b *oci.Built, docs map[v1.Hash]map[string][]byte, info sign.BuildInfo, repo string) (map[string]v1.Image, error) {
	top, err := b.Digest()
	if err != nil {
		return nil, err
	}
	digests := []v1.Hash{top}
	if idx, ok := b.Result.(v1.ImageIndex); ok {
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
