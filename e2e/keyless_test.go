package e2e

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packer-build/packer/internal/testutil"
)

// githubOIDC stands in for the two GitHub services keyless signing in
// Actions talks to before Fulcio: the OIDC issuer (discovery document and
// keys, which Fulcio fetches to verify tokens) and the runner's token
// endpoint (ACTIONS_ID_TOKEN_REQUEST_URL), which mints a token for the
// audience asked for. Tokens carry the claims GitHub puts in them.
type githubOIDC struct {
	srv      *httptest.Server
	key      *rsa.PrivateKey
	reqToken string
	asked    []string // audiences asked for at the token endpoint
}

const workflowRef = "acme/shop/.github/workflows/release.yml@refs/heads/main"

func startGitHubOIDC(t *testing.T) *githubOIDC {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	o := &githubOIDC{key: key, reqToken: "runner-request-token"}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": o.srv.URL, "jwks_uri": o.srv.URL + "/jwks",
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "bearer "+o.reqToken {
			http.Error(w, `{"message":"bad request token"}`, http.StatusUnauthorized)
			return
		}
		aud := r.URL.Query().Get("audience")
		o.asked = append(o.asked, aud)
		json.NewEncoder(w).Encode(map[string]string{"value": o.mint(t, aud)})
	})
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	return o
}

// mint signs a token as GitHub Actions does for a push to main.
func (o *githubOIDC) mint(t *testing.T, aud string) string {
	now := time.Now().Unix()
	claims := map[string]any{
		"iss": o.srv.URL, "aud": aud, "sub": "repo:acme/shop:ref:refs/heads/main",
		"iat": now, "nbf": now, "exp": now + 300,
		"job_workflow_ref": workflowRef, "job_workflow_sha": "0123456789abcdef0123456789abcdef01234567",
		"sha": "0123456789abcdef0123456789abcdef01234567", "event_name": "push", "repository": "acme/shop",
		"workflow": "release", "ref": "refs/heads/main", "runner_environment": "github-hosted",
		"repository_id": "1", "repository_owner": "acme", "repository_owner_id": "2",
		"repository_visibility": "public", "workflow_ref": workflowRef,
		"workflow_sha": "0123456789abcdef0123456789abcdef01234567", "run_id": "42", "run_attempt": "1",
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "k1"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, o.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// actionsEnv is what a GitHub Actions job with id-token: write sees.
func (o *githubOIDC) actionsEnv() []string {
	return []string{
		"ACTIONS_ID_TOKEN_REQUEST_URL=" + o.srv.URL + "/token?api-version=2.0",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + o.reqToken,
	}
}

// startFulcio runs the real Fulcio server (built by scripts/tools.sh) with
// its ephemeral test CA, trusting o as a GitHub workflow issuer, and returns
// its URL and the path of a file holding its CA roots.
func startFulcio(t *testing.T, o *githubOIDC) (string, string) {
	bin := testutil.NeedTool(t, "fulcio", "scripts/tools.sh installs it with go install")
	dir := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"OIDCIssuers": map[string]any{
		o.srv.URL: map[string]string{"IssuerURL": o.srv.URL, "ClientID": "sigstore", "Type": "github-workflow"},
	}})
	os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644)
	port, grpcPort, metrics := freePort(t), freePort(t), freePort(t)
	cmd := exec.Command(bin, "serve", "--ca", "ephemeralca", "--ct-log-url", "",
		"--config-path", filepath.Join(dir, "config.json"),
		"--host", "127.0.0.1", "--port", fmt.Sprint(port),
		"--grpc-host", "127.0.0.1", "--grpc-port", fmt.Sprint(grpcPort), "--metrics-port", fmt.Sprint(metrics),
		"--legacy-unix-domain-socket", filepath.Join(dir, "legacy.sock"))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/api/v2/trustBundle")
		if err == nil && resp.StatusCode == 200 {
			var tb struct {
				Chains []struct {
					Certificates []string `json:"certificates"`
				} `json:"chains"`
			}
			err := json.NewDecoder(resp.Body).Decode(&tb)
			resp.Body.Close()
			if err != nil || len(tb.Chains) == 0 {
				t.Fatalf("Fulcio trust bundle: %v %+v", err, tb)
			}
			roots := filepath.Join(dir, "roots.pem")
			os.WriteFile(roots, []byte(strings.Join(tb.Chains[0].Certificates, "\n")), 0o644)
			return url, roots
		}
		if resp != nil {
			resp.Body.Close()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("fulcio did not start:\n%s", logs.String())
	return "", ""
}

// TestKeylessSigningWithFulcio: in a (simulated) GitHub Actions job,
// --sign-keyless fetches the job's OIDC token, the real Fulcio certifies an
// ephemeral key for the workflow's identity, and the real cosign CLI
// verifies the signature and the SBOM attestation against Fulcio's root
// and that identity. Rekor cannot run here (it needs Trillian and a
// database), so the build passes --tlog-upload=false and cosign
// --insecure-ignore-tlog; Fulcio's test CA has no CT log, hence
// --insecure-ignore-sct.
func TestKeylessSigningWithFulcio(t *testing.T) {
	cosign := testutil.NeedTool(t, "cosign", "scripts/tools.sh installs it with go install")
	o := startGitHubOIDC(t)
	fulcio, roots := startFulcio(t, o)
	host := startRegistry(t, "")
	ref := host + "/acme/shop:v1"
	dir := testutil.CopyFixture(t, "go-server")
	env := append(cacheEnv(t), o.actionsEnv()...)
	r := packer(t, env, "build", dir, "--push", "-t", ref, "--sign-keyless", "--fulcio-url", fulcio, "--tlog-upload=false")
	if r.err != nil {
		t.Fatalf("packer build --sign-keyless: %v\n%s", r.err, r.stderr)
	}
	if len(o.asked) != 1 || o.asked[0] != "sigstore" {
		t.Errorf("token endpoint asked for audiences %v, want [sigstore]", o.asked)
	}
	identity := "https://github.com/" + workflowRef
	if !strings.Contains(r.stderr, "--certificate-identity "+identity+" --certificate-oidc-issuer "+o.srv.URL) {
		t.Errorf("the log should say how to verify (identity and issuer):\n%s", r.stderr)
	}

	verify := func(bin string, args ...string) (string, error) {
		cmd := exec.Command(bin, append(args, "--insecure-ignore-tlog", "--insecure-ignore-sct", "--allow-insecure-registry", ref)...)
		cmd.Env = append(os.Environ(), "SIGSTORE_ROOT_FILE="+roots, "TUF_ROOT="+t.TempDir())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	id := []string{"--certificate-identity", identity, "--certificate-oidc-issuer", o.srv.URL}
	if out, err := verify(cosign, append([]string{"verify"}, id...)...); err != nil {
		t.Fatalf("cosign verify (keyless): %v\n%s", err, out)
	}
	if out, err := verify(cosign, append([]string{"verify-attestation", "--type", "spdxjson"}, id...)...); err != nil {
		t.Errorf("cosign verify-attestation --type spdxjson (keyless): %v\n%s", err, out)
	}
	if out, err := verify(cosign, append([]string{"verify-attestation", "--type", "slsaprovenance1"}, id...)...); err != nil {
		t.Errorf("cosign verify-attestation --type slsaprovenance1 (keyless): %v\n%s", err, out)
	}
	cosign3 := testutil.NeedTool(t, "cosign-v3", "scripts/tools.sh installs it with go install")
	if out, err := verify(cosign3, append([]string{"verify"}, id...)...); err != nil {
		t.Errorf("cosign v3 verify (keyless): %v\n%s", err, out)
	}
	if out, err := verify(cosign3, append([]string{"verify-attestation", "--type", "spdxjson"}, id...)...); err != nil {
		t.Errorf("cosign v3 verify-attestation (keyless): %v\n%s", err, out)
	}
	// Another workflow's identity, or another issuer, is refused.
	if out, err := verify(cosign, "verify", "--certificate-identity", "https://github.com/acme/shop/.github/workflows/other.yml@refs/heads/main", "--certificate-oidc-issuer", o.srv.URL); err == nil {
		t.Errorf("cosign verify accepted another workflow's identity:\n%s", out)
	} else if !strings.Contains(out, "none of the expected identities matched") {
		t.Errorf("cosign verify with another identity failed for another reason:\n%s", out)
	}
	if out, err := verify(cosign, "verify", "--certificate-identity", identity, "--certificate-oidc-issuer", "https://token.actions.example"); err == nil {
		t.Errorf("cosign verify accepted another issuer:\n%s", out)
	}

	// packer verify checks the same, keyless: the certificate chains to
	// Fulcio's root, names the workflow and the issuer; without a log
	// entry only with --insecure-ignore-tlog.
	pv := func(args ...string) result {
		return packer(t, nil, append([]string{"verify", ref, "--trusted-root", roots}, args...)...)
	}
	if r := pv(append(id, "--insecure-ignore-tlog")...); r.err != nil || !strings.Contains(r.stdout, "signature verified against "+identity) || !strings.Contains(r.stdout, "https://spdx.dev/Document") {
		t.Errorf("packer verify (keyless): %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--certificate-identity", "https://github.com/acme/shop/.github/workflows/other.yml@refs/heads/main", "--certificate-oidc-issuer", o.srv.URL, "--insecure-ignore-tlog"}, "its certificate is for \"" + identity + "\""},
		{[]string{"--certificate-identity", identity, "--certificate-oidc-issuer", "https://token.actions.example", "--insecure-ignore-tlog"}, "its certificate's OIDC issuer is"},
		{id, "it has no transparency log entry"},
	} {
		r := pv(bad.args...)
		if r.err == nil || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("packer verify %v: %v, want an error with %q:\n%s", bad.args, r.err, bad.want, r.stderr)
		}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherCA := selfSignedCA(t, other)
	if r := packer(t, nil, append([]string{"verify", ref, "--trusted-root", otherCA, "--insecure-ignore-tlog"}, id...)...); r.err == nil || !strings.Contains(r.stderr, "does not chain to the trusted root") {
		t.Errorf("packer verify with another root: %v\n%s", r.err, r.stderr)
	}
}

// selfSignedCA writes a CA certificate for key (PEM) and returns its path.
func selfSignedCA(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "other-ca.pem")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return p
}

// fakeRekor stands in for a Rekor transparency log, which cannot run here
// (it needs Trillian and a database): it accepts hashedrekord and intoto
// entries, stores them in Rekor's canonical form (the intoto envelope
// replaced by its hashes, as Rekor does) and signs each entry's timestamp
// (SET) with its log key. What this checks is the client side: that real
// cosign, trusting that key, accepts the bundles packer stores.
type fakeRekor struct {
	srv     *httptest.Server
	key     *ecdsa.PrivateKey
	pubFile string
	kinds   []string
}

func startFakeRekor(t *testing.T) *fakeRekor {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	r := &fakeRekor{key: key, pubFile: filepath.Join(t.TempDir(), "rekor.pub")}
	os.WriteFile(r.pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	logID := fmt.Sprintf("%x", sha256.Sum256(der))
	hash := func(b []byte) map[string]string {
		return map[string]string{"algorithm": "sha256", "value": fmt.Sprintf("%x", sha256.Sum256(b))}
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && req.URL.Path == "/api/v1/log/publicKey" {
			w.Header().Set("Content-Type", "application/x-pem-file")
			w.Write(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			return
		}
		if req.Method != http.MethodPost || req.URL.Path != "/api/v1/log/entries" {
			http.NotFound(w, req)
			return
		}
		var e struct {
			APIVersion string          `json:"apiVersion"`
			Kind       string          `json:"kind"`
			Spec       json.RawMessage `json:"spec"`
		}
		if err := json.NewDecoder(req.Body).Decode(&e); err != nil || e.APIVersion != "0.0.1" {
			http.Error(w, `{"message":"bad entry"}`, http.StatusBadRequest)
			return
		}
		r.kinds = append(r.kinds, e.Kind)
		var canonical any
		switch e.Kind {
		case "hashedrekord":
			canonical = e
		case "intoto":
			var spec struct {
				Content   struct{ Envelope string }
				PublicKey string
			}
			var env struct{ Payload []byte }
			if json.Unmarshal(e.Spec, &spec) != nil || json.Unmarshal([]byte(spec.Content.Envelope), &env) != nil {
				http.Error(w, `{"message":"bad intoto entry"}`, http.StatusBadRequest)
				return
			}
			canonical = map[string]any{"apiVersion": "0.0.1", "kind": "intoto", "spec": map[string]any{
				"content":   map[string]any{"hash": hash([]byte(spec.Content.Envelope)), "payloadHash": hash(env.Payload)},
				"publicKey": spec.PublicKey,
			}}
		default:
			http.Error(w, `{"message":"unsupported kind"}`, http.StatusBadRequest)
			return
		}
		body, _ := json.Marshal(canonical)
		payload := map[string]any{
			"body": base64.StdEncoding.EncodeToString(body), "integratedTime": time.Now().Unix(),
			"logID": logID, "logIndex": len(r.kinds),
		}
		signed, _ := json.Marshal(payload) // sorted keys: the canonical form
		sum := sha256.Sum256(signed)
		set, _ := ecdsa.SignASN1(rand.Reader, key, sum[:])
		payload["verification"] = map[string]any{"signedEntryTimestamp": set}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{fmt.Sprintf("%064x", len(r.kinds)): payload})
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// TestKeylessSigningWithTransparencyLog: with the log on (the default),
// each signature and attestation carries a Rekor bundle that cosign
// verifies against the log's key, without --insecure-ignore-tlog.
func TestKeylessSigningWithTransparencyLog(t *testing.T) {
	cosign := testutil.NeedTool(t, "cosign", "scripts/tools.sh installs it with go install")
	o := startGitHubOIDC(t)
	fulcio, roots := startFulcio(t, o)
	rekor := startFakeRekor(t)
	host := startRegistry(t, "")
	ref := host + "/acme/shop:v1"
	dir := testutil.CopyFixture(t, "go-server")
	mustPacker(t, append(cacheEnv(t), o.actionsEnv()...), "build", dir, "--push", "-t", ref, "--sign-keyless", "--fulcio-url", fulcio, "--rekor-url", rekor.srv.URL)
	// One signature and three attestations (SLSA, SPDX, CycloneDX).
	if got := strings.Join(rekor.kinds, ","); got != "hashedrekord,intoto,intoto,intoto" {
		t.Errorf("entries recorded in the log: %s", got)
	}
	id := []string{"--certificate-identity", "https://github.com/" + workflowRef, "--certificate-oidc-issuer", o.srv.URL}
	for _, args := range [][]string{{"verify"}, {"verify-attestation", "--type", "spdxjson"}, {"verify-attestation", "--type", "slsaprovenance1"}} {
		cmd := exec.Command(cosign, append(append(args, id...), "--insecure-ignore-sct", "--allow-insecure-registry", ref)...)
		cmd.Env = append(os.Environ(), "SIGSTORE_ROOT_FILE="+roots, "SIGSTORE_REKOR_PUBLIC_KEY="+rekor.pubFile, "TUF_ROOT="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("cosign %s with the transparency log: %v\n%s", args[0], err, out)
		} else if !strings.Contains(string(out), "Existence of the claims in the transparency log was verified offline") {
			t.Errorf("cosign %s did not check the log entry:\n%s", args[0], out)
		}
	}
	// packer verify checks each bundle against the log's key: the signed
	// entry timestamp, and that the entry records this signature; another
	// log key is refused.
	r := packer(t, []string{"SIGSTORE_REKOR_PUBLIC_KEY=" + rekor.pubFile}, append([]string{"verify", ref, "--trusted-root", roots}, id...)...)
	if r.err != nil || !strings.Contains(r.stdout, "attestations verified") {
		t.Errorf("packer verify with the transparency log: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	other := startFakeRekor(t)
	r = packer(t, []string{"SIGSTORE_REKOR_PUBLIC_KEY=" + other.pubFile}, append([]string{"verify", ref, "--trusted-root", roots}, id...)...)
	if r.err == nil || !strings.Contains(r.stderr, "signed timestamp does not verify") {
		t.Errorf("packer verify against another log's key: %v\n%s", r.err, r.stderr)
	}
}

// TestKeylessSigningBoundaries: without a token keyless signing fails
// before building; with Rekor unreachable (as every Rekor is from here)
// the build fails naming the log and the way out, and nothing is tagged.
func TestKeylessSigningBoundaries(t *testing.T) {
	host := startRegistry(t, "")
	dir := testutil.CopyFixture(t, "go-server")
	env := append(cacheEnv(t), "ACTIONS_ID_TOKEN_REQUEST_URL=", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=", "SIGSTORE_ID_TOKEN=")
	r := packer(t, env, "build", dir, "--push", "-t", host+"/acme/shop:v1", "--sign-keyless")
	if r.err == nil || !strings.Contains(r.stderr, "id-token: write") || strings.Contains(r.stderr, "built sha256:") {
		t.Errorf("no token: want an error before building that says how to get one; got %v\n%s", r.err, r.stderr)
	}

	o := startGitHubOIDC(t)
	env = append(cacheEnv(t), o.actionsEnv()...)
	r = packer(t, env, "build", dir, "--push", "-t", host+"/acme/shop:v1", "--sign-keyless", "--fulcio-url", fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
	if r.err == nil || !strings.Contains(r.stderr, "signing certificate from Fulcio") {
		t.Errorf("Fulcio unreachable: want a clear error; got %v\n%s", r.err, r.stderr)
	}
	if _, err := exec.LookPath("fulcio"); err == nil || os.Getenv("CI") != "" {
		fulcio, _ := startFulcio(t, o)
		// A token for another audience: the real Fulcio refuses it, and
		// packer says so with Fulcio's reason.
		wrong := append(cacheEnv(t), "SIGSTORE_ID_TOKEN="+o.mint(t, "not-sigstore"))
		r = packer(t, wrong, "build", dir, "--push", "-t", host+"/acme/shop:v1", "--sign-keyless", "--fulcio-url", fulcio, "--tlog-upload=false")
		if r.err == nil || !strings.Contains(r.stderr, "signing certificate from Fulcio") || !strings.Contains(r.stderr, "error processing the identity token") || !strings.Contains(r.stderr, `audience "sigstore"`) {
			t.Errorf("token for another audience: want Fulcio's refusal, got %v\n%s", r.err, r.stderr)
		}
		r = packer(t, env, "build", dir, "--push", "-t", host+"/acme/shop:v1", "--sign-keyless", "--fulcio-url", fulcio, "--rekor-url", fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
		if r.err == nil || !strings.Contains(r.stderr, "Rekor transparency log") || !strings.Contains(r.stderr, "--tlog-upload=false") {
			t.Errorf("Rekor unreachable: want a clear error naming the log and --tlog-upload=false; got %v\n%s", r.err, r.stderr)
		}
	}
	resp, err := http.Get("http://" + host + "/v2/acme/shop/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		var tags struct{ Tags []string }
		json.NewDecoder(resp.Body).Decode(&tags)
		if len(tags.Tags) > 0 {
			t.Errorf("a failed keyless build left tags: %v", tags.Tags)
		}
	}
}
