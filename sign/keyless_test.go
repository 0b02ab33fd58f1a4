package sign

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func jwt(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(claims)) + ".c2ln"
}

func TestIdentityTokenSources(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "bearer request-token" {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"message":"Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable"}`))
			return
		}
		// The endpoint's own query survives; the audience is added.
		if r.URL.Query().Get("api-version") != "2.0" || r.URL.Query().Get("audience") != "sigstore" {
			http.Error(w, "bad query "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		w.Write([]byte(`{"value":"actions-token"}`))
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte("file-token\n"), 0o600)
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	actions := []string{"ACTIONS_ID_TOKEN_REQUEST_URL", srv.URL + "/?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token"}
	for _, tc := range []struct {
		name, explicit string
		env            func(string) string
		want, from     string
		err            string
	}{
		{"flag value", "flag-token", env(actions...), "flag-token", "--identity-token", ""},
		{"flag file", file, env(actions...), "file-token", "--identity-token file", ""},
		{"env", "", env(append(actions, "SIGSTORE_ID_TOKEN", "env-token")...), "env-token", "SIGSTORE_ID_TOKEN", ""},
		{"actions", "", env(actions...), "actions-token", "GitHub Actions", ""},
		{"actions refused", "", env("ACTIONS_ID_TOKEN_REQUEST_URL", srv.URL+"/?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "wrong"), "", "", "403 Forbidden: Unable to get"},
		{"none", "", env(), "", "", "permissions: id-token: write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, from, err := IdentityToken(context.Background(), tc.explicit, tc.env)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want || from != tc.from {
				t.Fatalf("got %q from %q (%v), want %q from %q", got, from, err, tc.want, tc.from)
			}
		})
	}
}

func TestTokenSubject(t *testing.T) {
	for _, tc := range []struct{ token, want, err string }{
		{jwt(`{"sub":"repo:acme/shop:ref:refs/heads/main"}`), "repo:acme/shop:ref:refs/heads/main", ""},
		{jwt(`{"sub":"12345","email":"dev@example.com"}`), "dev@example.com", ""},
		{jwt(`{"aud":"sigstore"}`), "", "neither an email nor a sub"},
		{"not-a-jwt", "", "not a JWT"},
		{"a.%%%.c", "", "not base64url"},
	} {
		got, err := tokenSubject(tc.token)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("tokenSubject(%q) err = %v, want %q", tc.token, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("tokenSubject(%q) = %q, %v; want %q", tc.token, got, err, tc.want)
		}
	}
}

// Identity reads what cosign matches: the SAN (email or URI) and Fulcio's
// issuer extension (the DER string of OID …57264.1.8, else the raw …1.1).
func TestSignerIdentity(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issuer := "https://token.actions.githubusercontent.com/" + strings.Repeat("x", 150) // long: a multi-byte DER length
	der8, _ := asn1.MarshalWithParams(issuer, "utf8")
	u, _ := url.Parse("https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main")
	for _, tc := range []struct {
		name string
		ext  []pkix.Extension
		want string
	}{
		{"1.8", []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: der8}}, issuer},
		{"1.1 only", []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte("https://old.example")}}, "https://old.example"},
	} {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), URIs: []*url.URL{u}, ExtraExtensions: tc.ext,
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		s := &Signer{Key: key, Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
		id, iss := s.Identity()
		if id != u.String() || iss != tc.want {
			t.Errorf("%s: Identity() = %q, %q; want %q, %q", tc.name, id, iss, u, tc.want)
		}
	}
}
