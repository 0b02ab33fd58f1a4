// Package sign signs images in cosign's format with a cosign key pair, so
// that `cosign verify --key cosign.pub` (v2 and v3) accepts them: a
// "simple signing" payload naming the image digest, signed with the key,
// stored as the image tagged sha256-DIGEST.sig in the same repository.
package sign

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/scrypt"
)

// Media type and annotation of cosign's signature layers.
const (
	SimpleSigningType   = "application/vnd.dev.cosign.simplesigning.v1+json"
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
)

// LoadKey reads a cosign private key (cosign generate-key-pair), decrypting
// it with password (COSIGN_PASSWORD).
func LoadKey(path string, password []byte) (crypto.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--sign-key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("--sign-key %s is not a PEM file; create a key pair with cosign generate-key-pair", path)
	}
	var der []byte
	switch block.Type {
	case "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY":
		if der, err = decrypt(block.Bytes, password); err != nil {
			return nil, fmt.Errorf("--sign-key %s: %w", path, err)
		}
	case "PRIVATE KEY", "EC PRIVATE KEY":
		der = block.Bytes
	default:
		return nil, fmt.Errorf("--sign-key %s holds a %q block; want a cosign private key", path, block.Type)
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("--sign-key %s: unsupported key type", path)
}

// decrypt opens go-securesystemslib's "encrypted" format (scrypt +
// nacl/secretbox), which cosign uses for its private keys.
func decrypt(data, password []byte) ([]byte, error) {
	var env struct {
		KDF struct {
			Name   string `json:"name"`
			Params struct {
				N, R, P int
			} `json:"params"`
			Salt []byte `json:"salt"`
		} `json:"kdf"`
		Cipher struct {
			Name  string `json:"name"`
			Nonce []byte `json:"nonce"`
		} `json:"cipher"`
		Ciphertext []byte `json:"ciphertext"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("reading the encrypted key: %w", err)
	}
	if env.KDF.Name != "scrypt" || env.Cipher.Name != "nacl/secretbox" || len(env.Cipher.Nonce) != 24 {
		return nil, fmt.Errorf("unsupported key encryption %s/%s", env.KDF.Name, env.Cipher.Name)
	}
	key, err := scrypt.Key(password, env.KDF.Salt, env.KDF.Params.N, env.KDF.Params.R, env.KDF.Params.P, 32)
	if err != nil {
		return nil, err
	}
	var k [32]byte
	var nonce [24]byte
	copy(k[:], key)
	copy(nonce[:], env.Cipher.Nonce)
	out, ok := secretbox.Open(nil, env.Ciphertext, &nonce, &k)
	if !ok {
		return nil, errors.New("wrong password (set COSIGN_PASSWORD to the key's password)")
	}
	return out, nil
}

// Payload is cosign's simple signing payload for an image digest in a
// repository.
func Payload(repo string, digest v1.Hash) []byte {
	type critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	}
	var c critical
	c.Identity.DockerReference = repo
	c.Image.DockerManifestDigest = digest.String()
	c.Type = "cosign container image signature"
	b, _ := json.Marshal(struct {
		Critical critical `json:"critical"`
		Optional any      `json:"optional"`
	}{c, nil})
	return b
}

// SignatureImage signs the payload for digest in repo and returns the
// image cosign reads from the sha256-DIGEST.sig tag.
func SignatureImage(ctx context.Context, s *Signer, repo string, digest v1.Hash, created time.Time) (v1.Image, error) {
	payload := Payload(repo, digest)
	sig, err := signBytes(s.Key, payload)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	ann := map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}
	if err := s.annotate(ctx, ann, func(v []byte) any { return hashedRekord(payload, sig, v) }); err != nil {
		return nil, err
	}
	img, err := mutate.Append(emptyArtifact(), mutate.Addendum{
		Layer:       static.NewLayer(payload, SimpleSigningType),
		MediaType:   SimpleSigningType,
		Annotations: ann,
	})
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: created})
}

// emptyArtifact is the OCI image the signature and attestation layers are
// appended to, as cosign writes them.
func emptyArtifact() v1.Image {
	return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
}

// Tag is the tag cosign looks for the signatures of digest under.
func Tag(digest v1.Hash) string {
	return digest.Algorithm + "-" + digest.Hex + ".sig"
}

// Signer signs with a key: a cosign key pair's, or an ephemeral one
// certified by Fulcio (Cert and Chain, PEM). When Tlog is set, every
// signature is also recorded in that Rekor log and the entry's bundle is
// stored beside it, as cosign sign does.
type Signer struct {
	Key   crypto.Signer
	Cert  []byte
	Chain []byte
	Tlog  *Rekor
}

// KeySigner signs with a cosign key pair, without a transparency log.
func KeySigner(key crypto.Signer) *Signer { return &Signer{Key: key} }

// verifier is what a Rekor entry names as the signer: the certificate, or
// the public key in PEM.
func (s *Signer) verifier() ([]byte, error) {
	if s.Cert != nil {
		return s.Cert, nil
	}
	der, err := x509.MarshalPKIXPublicKey(s.Key.Public())
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// annotate adds to a signature or attestation layer's annotations what
// cosign checks beside the signature: the certificate and chain when keyless,
// and, with a transparency log, the bundle of the entry that records it
// (entry builds that log entry for this signer's verifier).
func (s *Signer) annotate(ctx context.Context, into map[string]string, entry func(verifier []byte) any) error {
	if s.Cert != nil {
		into[CertificateAnnotation] = string(s.Cert)
		into[ChainAnnotation] = string(s.Chain)
	}
	if s.Tlog == nil {
		return nil
	}
	v, err := s.verifier()
	if err != nil {
		return err
	}
	into[BundleAnnotation], err = s.Tlog.Upload(ctx, entry(v))
	return err
}
