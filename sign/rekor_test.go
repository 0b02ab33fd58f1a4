package sign

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeLog answers entries with a SET signed by key (or, tamper, one that
// does not match the entry), and serves the public key.
func fakeLog(t *testing.T, tamper bool) *httptest.Server {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/log/publicKey" {
			w.Write(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			return
		}
		payload := map[string]any{"body": base64.StdEncoding.EncodeToString([]byte(`{"kind":"hashedrekord"}`)), "integratedTime": 1700000000,
			"logID": fmt.Sprintf("%x", sha256.Sum256(der)), "logIndex": 7}
		signed, _ := json.Marshal(payload)
		if tamper {
			signed = append(signed, ' ')
		}
		sum := sha256.Sum256(signed)
		set, _ := ecdsa.SignASN1(rand.Reader, key, sum[:])
		payload["verification"] = map[string]any{"signedEntryTimestamp": set}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"00": payload})
	}))
	t.Cleanup(s.Close)
	return s
}

// TestRekorSETVerified: the log's signed entry timestamp is checked
// against its key; one that does not match the entry is refused.
func TestRekorSETVerified(t *testing.T) {
	t.Setenv("SIGSTORE_REKOR_PUBLIC_KEY", "")
	entry := hashedRekord([]byte("payload"), []byte("sig"), []byte("pem"))
	if _, err := (&Rekor{URL: fakeLog(t, false).URL}).Upload(context.Background(), entry); err != nil {
		t.Fatalf("a valid SET: %v", err)
	}
	_, err := (&Rekor{URL: fakeLog(t, true).URL}).Upload(context.Background(), entry)
	if err == nil || !strings.Contains(err.Error(), "signed entry timestamp does not verify") {
		t.Fatalf("a SET that does not match its entry: %v", err)
	}
}
