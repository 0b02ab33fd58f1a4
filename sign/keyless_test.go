package sign

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
