// Package oci holds the types that the build, SBOM, signing and publish
// stages hand each other: a build's result with its per-platform images,
// the base each was built on, and what travels with the result when it is
// published. It is a leaf: it imports only go-containerregistry.
package oci

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Result is an image or an index: the smallest interface both satisfy.
type Result interface {
	MediaType() (types.MediaType, error)
	Size() (int64, error)
	Digest() (v1.Hash, error)
	RawManifest() ([]byte, error)
}

// BaseInfo records which base an image was built on.
type BaseInfo struct {
	// Name is the reference as the user gave it, normalised.
	Name string
	// Digest of the manifest (or index) the name resolved to.
	Digest v1.Hash
}

// Image is one platform's image of a build.
type Image struct {
	Platform v1.Platform
	Image    v1.Image
	// Base is nil for scratch and packer's builtin static base.
	Base *BaseInfo
}

// Built is what a build made: the result to publish (the image itself for
// one platform, an index of them for several) and each platform's image,
// in platform order.
type Built struct {
	Result Result
	Images []Image
}

// Digest is the result's digest.
func (b *Built) Digest() (v1.Hash, error) { return b.Result.Digest() }

// Base is the first platform's base (all platforms share one reference),
// or nil.
func (b *Built) Base() *BaseInfo {
	if len(b.Images) == 0 {
		return nil
	}
	return b.Images[0].Base
}

// Attachments travel with a result when it is published.
type Attachments struct {
	// Referrers are OCI 1.1 artifacts (SBOMs) whose subject is the result
	// or one of its images.
	Referrers []v1.Image
	// Tagged holds, per repository (name.Repository.Name()), images stored
	// under tags of their own: cosign's sha256-DIGEST.sig and .att. They
	// are per repository because a signature names the repository.
	Tagged map[string]map[string]v1.Image
}
