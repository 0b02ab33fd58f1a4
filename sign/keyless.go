package sign

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/packer-build/packer/internal/httpretry"
)

// Annotations cosign reads from keyless signature and attestation layers.
const (
	CertificateAnnotation = "dev.sigstore.cosign/certificate"
	ChainAnnotation       = "dev.sigstore.cosign/chain"
	BundleAnnotation      = "dev.sigstore.cosign/bundle"
)

// Public-good sigstore instances, the defaults of cosign.
const (
	DefaultFulcioURL = "https://fulcio.sigstore.dev"
	DefaultRekorURL  = "https://rekor.sigstore.dev"
)

// IdentityToken finds the OIDC identity token keyless signing exchanges for a
// certificate, as cosign does in CI: the explicit token (a value or a file
// holding it), then SIGSTORE_ID_TOKEN, then the GitHub Actions token endpoint
// (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN, with the audience "sigstore").
// It returns the token and where it came from.
func IdentityToken(ctx context.Context, explicit string, getenv func(string) string) (string, string, error) {
	if _, err := TokenSource(explicit, getenv); err != nil {
		return "", "", err
	}
	if explicit != "" {
		if b, err := os.ReadFile(explicit); err == nil {
			return strings.TrimSpace(string(b)), "--identity-token file", nil
		}
		return explicit, "--identity-token", nil
	}
	if t := getenv("SIGSTORE_ID_TOKEN"); t != "" {
		return t, "SIGSTORE_ID_TOKEN", nil
	}
	reqURL, reqTok := getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	u, err := url.Parse(reqURL)
	if err != nil {
		return "", "", fmt.Errorf("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: %w", err)
	}
	q := u.Query()
	q.Set("audience", "sigstore")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Authorization", "bearer "+reqTok)
	req.Header.Set("Accept", "application/json")
	var out struct {
		Value string `json:"value"`
	}
	if err := doJSON(req, &out); err != nil {
		return "", "", fmt.Errorf("fetching the GitHub Actions OIDC token: %w (does the job have `permissions: id-token: write`?)", err)
	}
	if out.Value == "" {
		return "", "", errors.New("the GitHub Actions OIDC token endpoint returned no token")
	}
	return out.Value, "GitHub Actions", nil
}

// TokenSource says where IdentityToken will find a token, or why there is
// none, without fetching it: a build checks this before it starts and
// fetches the token (short-lived in GitHub Actions) once it is done.
func TokenSource(explicit string, getenv func(string) string) (string, error) {
	switch {
	case explicit != "":
		return "--identity-token", nil
	case getenv("SIGSTORE_ID_TOKEN") != "":
		return "SIGSTORE_ID_TOKEN", nil
	case getenv("ACTIONS_ID_TOKEN_REQUEST_URL") != "" && getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN") != "":
		return "GitHub Actions", nil
	}
	return "", errors.New("--sign-keyless needs an OIDC identity token: in GitHub Actions give the job `permissions: id-token: write`; elsewhere pass --identity-token or set SIGSTORE_ID_TOKEN")
}

// tokenSubject is the identity Fulcio certifies for token: its email claim
// when it has one, else its subject. Fulcio checks it, so it is read here
// without verifying the token.
func tokenSubject(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("the identity token is not a JWT (want header.payload.signature)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", fmt.Errorf("the identity token's payload is not base64url: %w", err)
	}
	var claims struct {
		Sub   string `json:"sub"`
		Email string `json:"email"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return "", fmt.Errorf("the identity token's payload is not JSON: %w", err)
	}
	if claims.Email != "" {
		return claims.Email, nil
	}
	if claims.Sub == "" {
		return "", errors.New("the identity token has neither an email nor a sub claim")
	}
	return claims.Sub, nil
}

// Keyless makes an ephemeral P-256 key and has the Fulcio at fulcioURL
// certify it for the identity in token (Fulcio's v2 signingCert API).
func Keyless(ctx context.Context, fulcioURL, token string, tlog *Rekor) (*Signer, error) {
	subject, err := tokenSubject(token)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	proof, err := signBytes(key, []byte(subject))
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]any{
		"credentials": map[string]string{"oidcIdentityToken": token},
		"publicKeyRequest": map[string]any{
			"publicKey": map[string]string{
				"algorithm": "ECDSA",
				"content":   string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
			},
			"proofOfPossession": base64.StdEncoding.EncodeToString(proof),
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(fulcioURL, "/")+"/api/v2/signingCert", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("--fulcio-url %q: %w", fulcioURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	type chain struct {
		Chain struct {
			Certificates []string `json:"certificates"`
		} `json:"chain"`
	}
	var out struct {
		Embedded *chain `json:"signedCertificateEmbeddedSct"`
		Detached *chain `json:"signedCertificateDetachedSct"`
	}
	if err := doJSON(req, &out); err != nil {
		var he *httpError
		if errors.As(err, &he) && he.status >= 400 && he.status < 500 {
			return nil, fmt.Errorf("getting a signing certificate from Fulcio (%s): %w; Fulcio accepts tokens for the audience \"sigstore\" from the issuers it trusts (GitHub Actions, Google, …), still valid", fulcioURL, err)
		}
		return nil, fmt.Errorf("getting a signing certificate from Fulcio (%s): %w", fulcioURL, err)
	}
	var certs []string
	switch {
	case out.Embedded != nil:
		certs = out.Embedded.Chain.Certificates
	case out.Detached != nil:
		certs = out.Detached.Chain.Certificates
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("Fulcio (%s) returned no certificate", fulcioURL)
	}
	leaf, _ := pem.Decode([]byte(certs[0]))
	if leaf == nil {
		return nil, fmt.Errorf("Fulcio (%s) returned a certificate that is not PEM", fulcioURL)
	}
	cert, err := x509.ParseCertificate(leaf.Bytes)
	if err != nil {
		return nil, fmt.Errorf("Fulcio (%s) returned an unreadable certificate: %w", fulcioURL, err)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("Fulcio (%s) certified a different key", fulcioURL)
	}
	s := &Signer{Key: key, Cert: []byte(certs[0]), Tlog: tlog}
	for _, c := range certs[1:] {
		s.Chain = append(s.Chain, c...)
		if !strings.HasSuffix(c, "\n") {
			s.Chain = append(s.Chain, '\n')
		}
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("Fulcio (%s) returned an expired certificate", fulcioURL)
	}
	return s, nil
}

// Identity describes the certificate's identity and issuer for messages.
func (s *Signer) Identity() (identity, issuer string) {
	if s.Cert == nil {
		return "", ""
	}
	b, _ := pem.Decode(s.Cert)
	if b == nil {
		return "", ""
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return "", ""
	}
	switch {
	case len(c.EmailAddresses) > 0:
		identity = c.EmailAddresses[0]
	case len(c.URIs) > 0:
		identity = c.URIs[0].String()
	}
	// Fulcio's issuer extensions: 1.3.6.1.4.1.57264.1.8 (DER UTF8String)
	// and the older 1.3.6.1.4.1.57264.1.1 (raw string).
	for _, e := range c.Extensions {
		switch e.Id.String() {
		case "1.3.6.1.4.1.57264.1.8":
			var v string
			if _, err := asn1.UnmarshalWithParams(e.Value, &v, "utf8"); err == nil {
				issuer = v
			}
		case "1.3.6.1.4.1.57264.1.1":
			if issuer == "" {
				issuer = string(e.Value)
			}
		}
	}
	return identity, issuer
}

// httpError is a non-2xx answer.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// httpClient reaches Fulcio, Rekor and the OIDC issuer: each request is
// bounded, and retried on 429 and 5xx answers (Retry-After honoured) and
// broken connections.
var httpClient = &http.Client{Timeout: 60 * time.Second, Transport: &httpretry.Transport{Inner: http.DefaultTransport, Attempts: 5, Base: 500 * time.Millisecond}}

// doJSON sends req and decodes a 2xx JSON answer into out; any other answer
// becomes an error quoting the server's message.
func doJSON(req *http.Request, out any) error {
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(b))
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) == nil && e.Message != "" {
			msg = e.Message
		}
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		return &httpError{status: resp.StatusCode, msg: fmt.Sprintf("%s %s: %s: %s", req.Method, req.URL.Redacted(), resp.Status, msg)}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: unreadable answer: %w", req.Method, req.URL.Redacted(), err)
	}
	return nil
}
