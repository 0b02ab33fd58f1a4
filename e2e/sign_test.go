package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packer-build/packer/internal/testutil"
)

// TestCosignVerifiesSignature: the real cosign CLI verifies packer's
// signature offline; an image re-pushed under the tag, or another key,
// fails verification.
func TestCosignVerifiesSignature(t *testing.T) {
	cosign := testutil.NeedTool(t, "cosign", "scripts/tools.sh installs it with go install")
	host := startRegistry(t, "")
	keys := t.TempDir()
	genKey := func(dir string) {
		cmd := exec.Command(cosign, "generate-key-pair")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=test-password")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
		}
	}
	genKey(keys)
	verify := func(pub, ref string) (string, error) {
		cmd := exec.Command(cosign, "verify", "--key", pub, "--insecure-ignore-tlog", "--allow-insecure-registry", ref)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	dir := testutil.CopyFixture(t, "go-server")
	ref := host + "/team/signed:v1"
	env := append(cacheEnv(t), "COSIGN_PASSWORD=test-password")
	out := mustPacker(t, env, "build", dir, "--push", "-t", ref, "--sign-key", filepath.Join(keys, "cosign.key"), "--build-arg", "APP_MODE=blue-green")
	digest := out[strings.Index(out, "@")+1:]
	if o, err := verify(filepath.Join(keys, "cosign.pub"), ref); err != nil {
		t.Fatalf("cosign verify: %v\n%s", err, o)
	} else if !strings.Contains(o, digest) {
		t.Errorf("cosign verify output does not name %s:\n%s", digest, o)
	}
	// cosign v3 accepts the same signature and attestation.
	cosign3 := testutil.NeedTool(t, "cosign-v3", "scripts/tools.sh installs it with go install")
	for _, args := range [][]string{
		{"verify", "--key", filepath.Join(keys, "cosign.pub"), "--insecure-ignore-tlog", "--allow-insecure-registry", ref},
		{"verify-attestation", "--key", filepath.Join(keys, "cosign.pub"), "--insecure-ignore-tlog", "--allow-insecure-registry", "--type", "spdxjson", ref},
	} {
		if out, err := exec.Command(cosign3, args...).CombinedOutput(); err != nil {
			t.Errorf("cosign v3 %s: %v\n%s", args[0], err, out)
		}
	}

	// The SBOMs and the SLSA provenance are signed attestations.
	for _, tc := range []struct{ typ, want string }{
		{"spdxjson", `"predicateType":"https://spdx.dev/Document"`},
		{"cyclonedx", `"predicateType":"https://cyclonedx.org/bom"`},
		{"slsaprovenance1", `"predicateType":"https://slsa.dev/provenance/v1"`},
	} {
		cmd := exec.Command(cosign, "verify-attestation", "--key", filepath.Join(keys, "cosign.pub"), "--insecure-ignore-tlog", "--allow-insecure-registry", "--type", tc.typ, ref)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("cosign verify-attestation --type %s: %v\n%s", tc.typ, err, stderr.String())
			continue
		}
		if !strings.Contains(decodePayloads(t, stdout.String()), tc.want) {
			t.Errorf("verify-attestation --type %s did not return the %s statement", tc.typ, tc.want)
		}
	}
	prov := decodePayloads(t, runOut(t, cosign, "verify-attestation", "--key", filepath.Join(keys, "cosign.pub"), "--insecure-ignore-tlog", "--allow-insecure-registry", "--type", "slsaprovenance1", ref))
	if !strings.Contains(prov, `"buildArgs":["APP_MODE"]`) || strings.Contains(prov, "blue-green") || !strings.Contains(prov, "urn:packer:builder:v1") {
		t.Errorf("provenance should name build args (not values) and the builder:\n%s", prov)
	}

	// packer verify checks the same, without cosign.
	v := mustPacker(t, nil, "verify", ref, "--key", filepath.Join(keys, "cosign.pub"))
	for _, want := range []string{"signature verified", "https://spdx.dev/Document", "https://slsa.dev/provenance/v1", "https://cyclonedx.org/bom"} {
		if !strings.Contains(v, want) {
			t.Errorf("packer verify output lacks %q:\n%s", want, v)
		}
	}

	// Wrong password: a clear error, nothing pushed.
	r := packer(t, append(cacheEnv(t), "COSIGN_PASSWORD=nope"), "build", dir, "--push", "-t", host+"/team/other:v1", "--sign-key", filepath.Join(keys, "cosign.key"))
	if r.err == nil || !strings.Contains(r.stderr, "wrong password") {
		t.Errorf("wrong password: %v\n%s", r.err, r.stderr)
	}

	// Another key does not verify it.
	other := t.TempDir()
	genKey(other)
	if o, err := verify(filepath.Join(other, "cosign.pub"), ref); err == nil {
		t.Errorf("verified with another key:\n%s", o)
	}
	if r := packer(t, nil, "verify", ref, "--key", filepath.Join(other, "cosign.pub")); r.err == nil || !strings.Contains(r.stderr, "no signature verifies") {
		t.Errorf("packer verify with another key: %v\n%s", r.err, r.stderr)
	}

	// The tag moved to an unsigned image: verification fails.
	main := filepath.Join(dir, "main.go")
	b, _ := os.ReadFile(main)
	os.WriteFile(main, []byte(strings.Replace(string(b), "hello from packer", "tampered", 1)), 0o644)
	mustPacker(t, cacheEnv(t), "build", dir, "--push", "-t", ref)
	if o, err := verify(filepath.Join(keys, "cosign.pub"), ref); err == nil {
		t.Errorf("an unsigned image under the tag verified:\n%s", o)
	}
	if r := packer(t, nil, "verify", ref, "--key", filepath.Join(keys, "cosign.pub")); r.err == nil || !strings.Contains(r.stderr, "has no signature") {
		t.Errorf("packer verify of an unsigned image: %v\n%s", r.err, r.stderr)
	}
}

func runOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

// decodePayloads decodes the in-toto statements in cosign's
// verify-attestation output (one DSSE envelope per line).
func decodePayloads(t *testing.T, out string) string {
	t.Helper()
	var all []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var env struct{ Payload string }
		if json.Unmarshal([]byte(line), &env) != nil {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(env.Payload)
		if err == nil {
			all = append(all, string(b))
		}
	}
	return strings.Join(all, "\n")
}
