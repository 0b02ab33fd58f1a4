package sign

import (
	"bytes"
	"context"
	"crypto"
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
	"os"
	"time"

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

// Verifier checks cosign signatures and attestations: made with Key, or
// keyless, by a Fulcio certificate for Identity and Issuer that chains to
// Roots. A Rekor bundle on a signature is checked against LogKeys (its
// signed entry timestamp, and that the entry is this signature's); for a
// keyless signature the bundle is required, since its time is when the
// short-lived certificate was valid, unless IgnoreTlog.
type Verifier struct {
	Key              crypto.PublicKey
	Roots            *x509.CertPool
	Identity, Issuer string
	LogKeys          []*ecdsa.PublicKey
	IgnoreTlog       bool
	// Unchecked counts key signatures whose log bundle was not checked,
	// for want of a log key.
	Unchecked int
}

// Keyless reports whether v checks certificates rather than a key.
func (v *Verifier) Keyless() bool { return v.Key == nil }

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

// rekorBody is the part of a log entry's body that ties it to one
// signature: a hashedrekord's signature and payload hash, an intoto
// entry's payload hash, and the verifier (certificate or key, PEM).
type rekorBody struct {
	Kind string `json:"kind"`
	Spec struct {
		Signature struct {
			Content   string `json:"content"`
			PublicKey struct {
				Content string `json:"content"`
			} `json:"publicKey"`
		} `json:"signature"`
		Data struct {
			Hash struct {
				Value string `json:"value"`
			} `json:"hash"`
		} `json:"data"`
		Content struct {
			PayloadHash struct {
				Value string `json:"value"`
			} `json:"payloadHash"`
		} `json:"content"`
		PublicKey string `json:"publicKey"`
	} `json:"spec"`
}

// logged checks a bundle annotation: the signed entry timestamp against
// one of the log keys, and that the entry records this signature (sig
// over payload, verifier in PEM). It returns the time the log recorded.
func (v *Verifier) logged(ann string, sig, payload, verifier []byte) (time.Time, error) {
	var b bundle
	if err := json.Unmarshal([]byte(ann), &b); err != nil {
		return time.Time{}, fmt.Errorf("the transparency log bundle is not JSON: %v", err)
	}
	if len(v.LogKeys) == 0 {
		return time.Time{}, errors.New("no transparency log key to check its bundle against: give the log's key with SIGSTORE_REKOR_PUBLIC_KEY=FILE or a --trusted-root holding it, or --insecure-ignore-tlog")
	}
	var setErr error
	ok := false
	for _, k := range v.LogKeys {
		if setErr = (&Rekor{key: k}).verifySET(context.Background(), b); setErr == nil {
			ok = true
			break
		}
	}
	if !ok {
		return time.Time{}, fmt.Errorf("its transparency log entry's signed timestamp does not verify: %v", setErr)
	}
	raw, err := base64.StdEncoding.DecodeString(b.Payload.Body)
	if err != nil {
		return time.Time{}, errors.New("the log entry's body is not base64")
	}
	var body rekorBody
	if err := json.Unmarshal(raw, &body); err != nil {
		return time.Time{}, fmt.Errorf("the log entry's body: %v", err)
	}
	sum := sha256.Sum256(payload)
	pub := body.Spec.PublicKey
	switch body.Kind {
	case "hashedrekord":
		pub = body.Spec.Signature.PublicKey.Content
		if body.Spec.Signature.Content != base64.StdEncoding.EncodeToString(sig) || body.Spec.Data.Hash.Value != hex.EncodeToString(sum[:]) {
			return time.Time{}, errors.New("its transparency log entry records another signature")
		}
	case "intoto":
		if body.Spec.Content.PayloadHash.Value != hex.EncodeToString(sum[:]) {
			return time.Time{}, errors.New("its transparency log entry records another attestation")
		}
	default:
		return time.Time{}, fmt.Errorf("its transparency log entry is a %q, not a signature", body.Kind)
	}
	if k, err := base64.StdEncoding.DecodeString(pub); err != nil || !bytes.Equal(bytes.TrimSpace(k), bytes.TrimSpace(verifier)) {
		return time.Time{}, errors.New("its transparency log entry names another signer")
	}
	return time.Unix(b.Payload.IntegratedTime, 0), nil
}

// signer returns the key a signature layer (its annotations) must verify
// with, having checked what vouches for it: for a key, that key (and its
// log entry when there is one and a log key); keyless, the certificate's
// chain to Roots at the time the log recorded, its identity and issuer.
// check verifies the signature itself with the key and is run before the
// log entry is compared.
func (v *Verifier) signer(ann map[string]string, sig, payload []byte, check func(crypto.PublicKey) bool) error {
	if !v.Keyless() {
		if !check(v.Key) {
			return errors.New("the signature does not verify with the key")
		}
		if b := ann[BundleAnnotation]; b != "" && len(v.LogKeys) == 0 {
			v.Unchecked++
		} else if b != "" {
			der, err := x509.MarshalPKIXPublicKey(v.Key)
			if err != nil {
				return err
			}
			if _, err := v.logged(b, sig, payload, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); err != nil {
				return err
			}
		}
		return nil
	}
	certPEM := []byte(ann[CertificateAnnotation])
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		return errors.New("it carries no certificate (it was signed with a key: verify with --key)")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return fmt.Errorf("its certificate: %v", err)
	}
	if !check(cert.PublicKey) {
		return errors.New("the signature does not verify with its certificate's key")
	}
	at := time.Now()
	if b := ann[BundleAnnotation]; b != "" || !v.IgnoreTlog {
		if b == "" {
			return errors.New("it has no transparency log entry, which proves the short-lived certificate was valid when it signed (pass --insecure-ignore-tlog to check the certificate at the current time instead)")
		}
		if at, err = v.logged(b, sig, payload, certPEM); err != nil {
			return err
		}
	}
	inter := x509.NewCertPool()
	for rest := []byte(ann[ChainAnnotation]); ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: v.Roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
		return fmt.Errorf("its certificate does not chain to the trusted root at %s: %v", at.UTC().Format(time.RFC3339), err)
	}
	s := &Signer{Cert: certPEM}
	identity, issuer := s.Identity()
	if identity != v.Identity {
		return fmt.Errorf("its certificate is for %q, not %q", identity, v.Identity)
	}
	if issuer != v.Issuer {
		return fmt.Errorf("its certificate's OIDC issuer is %q, not %q", issuer, v.Issuer)
	}
	return nil
}

// Signatures checks sigImg (the .sig image) for signatures over a payload
// naming digest. It returns how many verify, and why the others did not.
func (v *Verifier) Signatures(sigImg v1.Image, digest v1.Hash) (int, []string, error) {
	m, err := sigImg.Manifest()
	if err != nil {
		return 0, nil, err
	}
	ls, err := sigImg.Layers()
	if err != nil {
		return 0, nil, err
	}
	valid := 0
	var why []string
	for i, d := range m.Layers {
		sig, err := base64.StdEncoding.DecodeString(d.Annotations[SignatureAnnotation])
		if err != nil || len(sig) == 0 {
			continue
		}
		payload, err := layerBytes(ls[i])
		if err != nil {
			return 0, nil, err
		}
		var p struct {
			Critical struct {
				Image struct {
					Digest string `json:"docker-manifest-digest"`
				} `json:"image"`
			} `json:"critical"`
		}
		if json.Unmarshal(payload, &p) != nil || p.Critical.Image.Digest != digest.String() {
			why = append(why, "a signature is for another image")
			continue
		}
		if err := v.signer(d.Annotations, sig, payload, func(k crypto.PublicKey) bool { return verifySig(k, payload, sig) }); err != nil {
			why = append(why, err.Error())
			continue
		}
		valid++
	}
	return valid, why, nil
}

// Attestations checks the DSSE envelopes in attImg (the .att image) and
// returns the predicate types that verify for digest, and why the others
// did not.
func (v *Verifier) Attestations(attImg v1.Image, digest v1.Hash) ([]string, []string, error) {
	m, err := attImg.Manifest()
	if err != nil {
		return nil, nil, err
	}
	ls, err := attImg.Layers()
	if err != nil {
		return nil, nil, err
	}
	var out, why []string
	for i, l := range ls {
		b, err := layerBytes(l)
		if err != nil {
			return nil, nil, err
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
		if err != nil || len(env.Signatures) == 0 {
			continue
		}
		var st Statement
		if json.Unmarshal(payload, &st) != nil {
			continue
		}
		subject := false
		for _, s := range st.Subject {
			subject = subject || s.Digest[digest.Algorithm] == digest.Hex
		}
		if !subject {
			why = append(why, "an attestation is about another image")
			continue
		}
		var sigErr error
		for _, s := range env.Signatures {
			sig, err := base64.StdEncoding.DecodeString(s.Sig)
			if err != nil {
				continue
			}
			var ann map[string]string
			if i < len(m.Layers) {
				ann = m.Layers[i].Annotations
			}
			if sigErr = v.signer(ann, sig, payload, func(k crypto.PublicKey) bool { return verifySig(k, pae(env.PayloadType, payload), sig) }); sigErr == nil {
				out = append(out, st.PredicateType)
				break
			}
		}
		if sigErr != nil {
			why = append(why, st.PredicateType+": "+sigErr.Error())
		}
	}
	return out, why, nil
}

// TrustedRoot reads the certificate authorities keyless signatures chain
// to, and the transparency logs' keys when the file has them: a PEM
// bundle of CA certificates (as cosign's SIGSTORE_ROOT_FILE), or
// sigstore's trusted_root.json (certificateAuthorities and tlogs).
func TrustedRoot(path string) (*x509.CertPool, []*ecdsa.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--trusted-root: %w", err)
	}
	pool := x509.NewCertPool()
	var logKeys []*ecdsa.PublicKey
	n := 0
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		var tr struct {
			CertificateAuthorities []struct {
				CertChain struct {
					Certificates []struct {
						RawBytes []byte `json:"rawBytes"`
					} `json:"certificates"`
				} `json:"certChain"`
			} `json:"certificateAuthorities"`
			Tlogs []struct {
				PublicKey struct {
					RawBytes []byte `json:"rawBytes"`
				} `json:"publicKey"`
			} `json:"tlogs"`
		}
		if err := json.Unmarshal(raw, &tr); err != nil {
			return nil, nil, fmt.Errorf("--trusted-root %s: not a sigstore trusted_root.json: %v", path, err)
		}
		for _, ca := range tr.CertificateAuthorities {
			for _, c := range ca.CertChain.Certificates {
				cert, err := x509.ParseCertificate(c.RawBytes)
				if err != nil {
					return nil, nil, fmt.Errorf("--trusted-root %s: a certificate authority: %v", path, err)
				}
				pool.AddCert(cert)
				n++
			}
		}
		for _, tl := range tr.Tlogs {
			if k, err := x509.ParsePKIXPublicKey(tl.PublicKey.RawBytes); err == nil {
				if ec, ok := k.(*ecdsa.PublicKey); ok {
					logKeys = append(logKeys, ec)
				}
			}
		}
	} else {
		for rest := raw; ; {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				break
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("--trusted-root %s: %v", path, err)
			}
			pool.AddCert(cert)
			n++
		}
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("--trusted-root %s holds no certificate: give Fulcio's CA certificates in PEM, or sigstore's trusted_root.json", path)
	}
	return pool, logKeys, nil
}

// LogKey reads a transparency log's public key (PEM, ECDSA).
func LogKey(path string) (*ecdsa.PublicKey, error) {
	r := &Rekor{PublicKeyFile: path}
	return r.publicKey(context.Background())
}
