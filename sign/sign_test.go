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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/scrypt"
)

// writeKey writes a private key the way cosign generate-key-pair does
// (PKCS#8 in go-securesystemslib's scrypt + secretbox envelope).
func writeKey(t *testing.T, k *ecdsa.PrivateKey, password string) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	salt := make([]byte, 32)
	rand.Read(salt)
	var nonce [24]byte
	rand.Read(nonce[:])
	key, _ := scrypt.Key([]byte(password), salt, 32768, 8, 1, 32)
	var kk [32]byte
	copy(kk[:], key)
	env := map[string]any{
		"kdf":        map[string]any{"name": "scrypt", "params": map[string]int{"N": 32768, "r": 8, "p": 1}, "salt": salt},
		"cipher":     map[string]any{"name": "nacl/secretbox", "nonce": nonce[:]},
		"ciphertext": secretbox.Seal(nil, der, &nonce, &kk),
	}
	b, _ := json.Marshal(env)
	p := filepath.Join(t.TempDir(), "cosign.key")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: b}), 0o600)
	return p
}

func TestLoadKeyAndSign(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	path := writeKey(t, k, "s3cret")
	if _, err := LoadKey(path, []byte("wrong")); err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Errorf("LoadKey(wrong password) = %v", err)
	}
	signer, err := LoadKey(path, []byte("s3cret"))
	if err != nil {
		t.Fatalf("LoadKey() = %v", err)
	}
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	img, err := SignatureImage(context.Background(), KeySigner(signer), "registry.test/team/app", d, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	if len(m.Layers) != 1 || m.Layers[0].MediaType != SimpleSigningType {
		t.Fatalf("layers = %+v", m.Layers)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Layers[0].Annotations[SignatureAnnotation])
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	rc, _ := ls[0].Compressed()
	var payload strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := rc.Read(buf)
		payload.Write(buf[:n])
		if err != nil {
			break
		}
	}
	sum := sha256.Sum256([]byte(payload.String()))
	if !ecdsa.VerifyASN1(&k.PublicKey, sum[:], sig) {
		t.Errorf("signature does not verify with the public key")
	}
	var p struct {
		Critical struct {
			Identity struct {
				DockerReference string `json:"docker-reference"`
			} `json:"identity"`
			Image struct {
				DockerManifestDigest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
	}
	json.Unmarshal([]byte(payload.String()), &p)
	if p.Critical.Image.DockerManifestDigest != d.String() || p.Critical.Identity.DockerReference != "registry.test/team/app" || p.Critical.Type != "cosign container image signature" {
		t.Errorf("payload = %s", payload.String())
	}
	if Tag(d) != "sha256-"+d.Hex+".sig" {
		t.Errorf("Tag() = %s", Tag(d))
	}
	if _, err := LoadKey(filepath.Join(t.TempDir(), "none"), nil); err == nil {
		t.Errorf("LoadKey(missing) succeeded")
	}
}
