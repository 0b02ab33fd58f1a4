package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// LoadPublicKey reads a PEM public key (cosign.pub).
func LoadPublicKey(path string) (crypto.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("--key %s is not a PEM public key", path)
	}
	return x509.ParsePKIXPublicKey(block.Bytes)
}

func verifySig(pub crypto.PublicKey, msg, sig []byte) bool {
	sum := sha256.Sum256(msg)
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		return ecdsa.VerifyASN1(k, sum[:], sig)
	}
	return false
}

func layerBytes(l v1.Layer) ([]byte, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// VerifySignature checks that sigImg (the .sig image) holds a signature by
// pub over a payload naming digest. It returns the number of valid ones.
func VerifySignature(pub crypto.PublicKey, sigImg v1.Image, digest v1.Hash) (int, error) {
	m, err := sigImg.Manifest()
	if err != nil {
		return 0, err
	}
	ls, err := sigImg.Layers()
	if err != nil {
		return 0, err
	}
	valid := 0
	for i, d := range m.Layers {
		sig, err := base64.StdEncoding.DecodeString(d.Annotations[SignatureAnnotation])
		if err != nil || len(sig) == 0 {
			continue
		}
		payload, err := layerBytes(ls[i])
		if err != nil {
			return 0, err
		}
		if !verifySig(pub, payload, sig) {
			continue
		}
		var p struct {
			Critical struct {
				Image struct {
					Digest string `json:"docker-manifest-digest"`
				} `json:"image"`
			} `json:"critical"`
		}
		if json.Unmarshal(payload, &p) == nil && p.Critical.Image.Digest == digest.String() {
			valid++
		}
	}
	return valid, nil
}

// VerifyAttestations checks the DSSE envelopes in attImg (the .att image)
// and returns the predicate types signed by pub about digest.
func VerifyAttestations(pub crypto.PublicKey, attImg v1.Image, digest v1.Hash) ([]string, error) {
	ls, err := attImg.Layers()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range ls {
		b, err := layerBytes(l)
		if err != nil {
			return nil, err
		}
		var env struct {
			PayloadType string `json:"payloadType"`
			Payload     string `json:"payload"`
			Signatures  []struct {
				Sig string `json:"sig"`
			} `json:"signatures"`
		}
		if json.Unmarshal(b, &env) != nil {
			continue
		}
		payload, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			continue
		}
		ok := false
		for _, s := range env.Signatures {
			if sig, err := base64.StdEncoding.DecodeString(s.Sig); err == nil && verifySig(pub, pae(env.PayloadType, payload), sig) {
				ok = true
			}
		}
		if !ok {
			continue
		}
		var st Statement
		if json.Unmarshal(payload, &st) != nil {
			continue
		}
		for _, s := range st.Subject {
			if s.Digest[digest.Algorithm] == digest.Hex {
				out = append(out, st.PredicateType)
			}
		}
	}
	return out, nil
}
