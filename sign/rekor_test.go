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

// TestBundleChecked: packer verify's check of a Rekor bundle: the SET
// against the log's key, and that the entry is this signature by this
// signer; each mismatch is refused with its reason.
func TestBundleChecked(t *testing.T) {
	logKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(logKey.Public())
	makeBundle := func(entry any) string {
		body, _ := json.Marshal(entry)
		var b bundle
		b.Payload.Body = base64.StdEncoding.EncodeToString(body)
		b.Payload.IntegratedTime, b.Payload.LogIndex, b.Payload.LogID = 1700000000, 3, fmt.Sprintf("%x", sha256.Sum256(der))
		signed, _ := json.Marshal(map[string]any{"body": b.Payload.Body, "integratedTime": b.Payload.IntegratedTime, "logID": b.Payload.LogID, "logIndex": b.Payload.LogIndex})
		sum := sha256.Sum256(signed)
		b.SignedEntryTimestamp, _ = ecdsa.SignASN1(rand.Reader, logKey, sum[:])
		j, _ := json.Marshal(b)
		return string(j)
	}
	payload, sig, signer := []byte("payload"), []byte("signature"), []byte("-----BEGIN PUBLIC KEY-----\nsigner\n-----END PUBLIC KEY-----\n")
	v := &Verifier{LogKeys: []*ecdsa.PublicKey{&logKey.PublicKey}}
	at, err := v.logged(makeBundle(hashedRekord(payload, sig, signer)), sig, payload, signer)
	if err != nil || at.Unix() != 1700000000 {
		t.Fatalf("a matching bundle: %v, %v", at, err)
	}
	for _, tc := range []struct {
		name   string
		bundle string
		v      *Verifier
		want   string
	}{
		{"another signature", makeBundle(hashedRekord(payload, []byte("other"), signer)), v, "records another signature"},
		{"another payload", makeBundle(hashedRekord([]byte("other"), sig, signer)), v, "records another signature"},
		{"another signer", makeBundle(hashedRekord(payload, sig, []byte("other"))), v, "names another signer"},
		{"another log", makeBundle(hashedRekord(payload, sig, signer)), &Verifier{LogKeys: []*ecdsa.PublicKey{otherKey(t)}}, "signed timestamp does not verify"},
		{"no log key", makeBundle(hashedRekord(payload, sig, signer)), &Verifier{}, "no transparency log key"},
	} {
		if _, err := tc.v.logged(tc.bundle, sig, payload, signer); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func otherKey(t *testing.T) *ecdsa.PublicKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}
