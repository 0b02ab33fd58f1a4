package sign

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// Rekor records signatures in a Rekor transparency log (its v1 REST API),
// as cosign sign and cosign attest do: a hashedrekord entry for a
// signature, an intoto entry for an attestation's DSSE envelope.
type Rekor struct {
	URL string
	// PublicKeyFile pins the log's public key (PEM); "" means
	// $SIGSTORE_REKOR_PUBLIC_KEY, as cosign reads it, else the key the log
	// serves at /api/v1/log/publicKey.
	PublicKeyFile string

	key *ecdsa.PublicKey
}

// bundle is what cosign stores in the dev.sigstore.cosign/bundle annotation:
// the entry and the log's signed entry timestamp (SET), enough to verify
// offline that the log accepted it.
type bundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

// hashedRekord is the entry for a signature over payload by verifier (a
// certificate or public key in PEM).
func hashedRekord(payload, sig, verifier []byte) any {
	sum := sha256.Sum256(payload)
	return map[string]any{
		"apiVersion": "0.0.1",
		"kind":       "hashedrekord",
		"spec": map[string]any{
			"data": map[string]any{"hash": map[string]string{"algorithm": "sha256", "value": hex.EncodeToString(sum[:])}},
			"signature": map[string]any{
				"content":   base64.StdEncoding.EncodeToString(sig),
				"publicKey": map[string]string{"content": base64.StdEncoding.EncodeToString(verifier)},
			},
		},
	}
}

// inToto is the entry for a DSSE envelope signed by verifier; the log
// computes its hashes itself.
func inToto(envelope, verifier []byte) any {
	return map[string]any{
		"apiVersion": "0.0.1",
		"kind":       "intoto",
		"spec": map[string]any{
			"content":   map[string]string{"envelope": string(envelope)},
			"publicKey": base64.StdEncoding.EncodeToString(verifier),
		},
	}
}

// Upload adds entry to the log and returns the bundle annotation's value.
func (r *Rekor) Upload(ctx context.Context, entry any) (string, error) {
	body, err := json.Marshal(entry)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(r.URL, "/")+"/api/v1/log/entries", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("--rekor-url %q: %w", r.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	var out map[string]struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
		Verification   struct {
			SignedEntryTimestamp []byte `json:"signedEntryTimestamp"`
		} `json:"verification"`
	}
	if err := doJSON(req, &out); err != nil {
		return "", fmt.Errorf("recording the signature in the Rekor transparency log (%s): %w; pass --tlog-upload=false to sign without it (verifiers then need --insecure-ignore-tlog)", r.URL, err)
	}
	for _, e := range out {
		if len(e.Verification.SignedEntryTimestamp) == 0 {
			return "", fmt.Errorf("the Rekor log (%s) returned an entry without a signed entry timestamp", r.URL)
		}
		var b bundle
		b.SignedEntryTimestamp = e.Verification.SignedEntryTimestamp
		b.Payload.Body, b.Payload.IntegratedTime, b.Payload.LogIndex, b.Payload.LogID = e.Body, e.IntegratedTime, e.LogIndex, e.LogID
		if err := r.verifySET(ctx, b); err != nil {
			return "", fmt.Errorf("the Rekor log (%s) answered with an entry whose signed entry timestamp does not verify: %w; nothing was published", r.URL, err)
		}
		j, err := json.Marshal(b)
		return string(j), err
	}
	return "", errors.New("the Rekor log returned no entry")
}

// verifySET checks the log's signed entry timestamp: its ECDSA signature
// over the entry's canonical JSON (body, integratedTime, logID, logIndex:
// sorted keys, no spaces), and that logID names the key.
func (r *Rekor) verifySET(ctx context.Context, b bundle) error {
	key, err := r.publicKey(ctx)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return err
	}
	if id := sha256.Sum256(der); hex.EncodeToString(id[:]) != b.Payload.LogID {
		return fmt.Errorf("the entry's log ID %s is not the log key's (%x)", b.Payload.LogID, id)
	}
	canonical, err := json.Marshal(struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogID          string `json:"logID"`
		LogIndex       int64  `json:"logIndex"`
	}{b.Payload.Body, b.Payload.IntegratedTime, b.Payload.LogID, b.Payload.LogIndex})
	if err != nil {
		return err
	}
	sum := sha256.Sum256(canonical)
	if !ecdsa.VerifyASN1(key, sum[:], b.SignedEntryTimestamp) {
		return errors.New("the signature does not match the log's public key")
	}
	return nil
}

// publicKey is the log's key: pinned by file, or served by the log.
func (r *Rekor) publicKey(ctx context.Context) (*ecdsa.PublicKey, error) {
	if r.key != nil {
		return r.key, nil
	}
	file := r.PublicKeyFile
	if file == "" {
		file = os.Getenv("SIGSTORE_REKOR_PUBLIC_KEY")
	}
	var raw []byte
	var err error
	if file != "" {
		if raw, err = os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("reading the Rekor public key: %w", err)
		}
	} else {
		req, rerr := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(r.URL, "/")+"/api/v1/log/publicKey", nil)
		if rerr != nil {
			return nil, rerr
		}
		resp, rerr := httpClient.Do(req)
		if rerr != nil {
			return nil, fmt.Errorf("fetching the log's public key: %w", rerr)
		}
		raw, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetching the log's public key: HTTP %d %v; pin it with SIGSTORE_REKOR_PUBLIC_KEY=FILE", resp.StatusCode, err)
		}
	}
	blk, _ := pem.Decode(raw)
	if blk == nil {
		return nil, errors.New("the Rekor public key is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the Rekor public key: %w", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("the Rekor public key is a %T; packer verifies ECDSA log keys", pub)
	}
	r.key = ec
	return ec, nil
}
