package sign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
)

// Predicate types packer attests.
const (
	PredicateSPDX      = "https://spdx.dev/Document"
	PredicateCycloneDX = "https://cyclonedx.org/bom"
	PredicateSLSA1     = "https://slsa.dev/provenance/v1"
	dsseType           = "application/vnd.dsse.envelope.v1+json"
	inTotoPayloadType  = "application/vnd.in-toto+json"
)

// Statement is an in-toto statement about one image.
type Statement struct {
	Type          string          `json:"_type"`
	PredicateType string          `json:"predicateType"`
	Subject       []Subject       `json:"subject"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject names an artifact by digest.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// pae is DSSE's pre-authentication encoding.
func pae(payloadType string, payload []byte) []byte {
	return []byte(fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload))
}

func signBytes(key crypto.Signer, b []byte) ([]byte, error) {
	sum := sha256.Sum256(b)
	if k, ok := key.(*ecdsa.PrivateKey); ok {
		return ecdsa.SignASN1(rand.Reader, k, sum[:])
	}
	return key.Sign(rand.Reader, sum[:], crypto.SHA256)
}

// Envelope signs an in-toto statement about digest in repo as a DSSE
// envelope, the form cosign attest writes.
func Envelope(s *Signer, repo string, digest v1.Hash, predicateType string, predicate []byte) ([]byte, error) {
	st, err := json.Marshal(Statement{
		Type:          "https://in-toto.io/Statement/v0.1",
		PredicateType: predicateType,
		Subject:       []Subject{{Name: repo, Digest: map[string]string{digest.Algorithm: digest.Hex}}},
		Predicate:     predicate,
	})
	if err != nil {
		return nil, err
	}
	sig, err := signBytes(s.Key, pae(inTotoPayloadType, st))
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"payloadType": inTotoPayloadType,
		"payload":     base64.StdEncoding.EncodeToString(st),
		"signatures":  []map[string]string{{"keyid": "", "sig": base64.StdEncoding.EncodeToString(sig)}},
	})
}

// AttestationImage holds signed attestations (DSSE envelopes) as cosign
// stores them under the sha256-DIGEST.att tag: one layer per envelope,
// annotated with its predicate type (and, signed keyless, the certificate;
// with a transparency log, the entry's bundle).
func AttestationImage(ctx context.Context, s *Signer, envelopes map[string][]byte, order []string, created time.Time) (v1.Image, error) {
	img := emptyArtifact()
	for _, pt := range order {
		// cosign reads the DSSE signatures; the annotation must exist.
		ann := map[string]string{"predicateType": pt, SignatureAnnotation: ""}
		if err := s.annotate(ctx, ann, func(v []byte) any { return inToto(envelopes[pt], v) }); err != nil {
			return nil, err
		}
		var err error
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:       static.NewLayer(envelopes[pt], dsseType),
			MediaType:   dsseType,
			Annotations: ann,
		})
		if err != nil {
			return nil, err
		}
	}
	return mutate.CreatedAt(img, v1.Time{Time: created})
}

// AttestationTag is the tag cosign looks for attestations of digest under.
func AttestationTag(digest v1.Hash) string {
	return digest.Algorithm + "-" + digest.Hex + ".att"
}
