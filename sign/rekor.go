package sign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Rekor records signatures in a Rekor transparency log (its v1 REST API),
// as cosign sign and cosign attest do: a hashedrekord entry for a
// signature, an intoto entry for an attestation's DSSE envelope.
type Rekor struct {
	URL string
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
		j, err := json.Marshal(b)
		return string(j), err
	}
	return "", errors.New("the Rekor log returned no entry")
}
