package buildargs

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/packer-build/packer/layers"
)

func env(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseEnvFile(t *testing.T) {
	host := env(map[string]string{"FROM_HOST": "h", "EMPTY": ""})
	for _, tc := range []struct {
		description string
		in          string
		want        []KV
		wantErr     string
	}{
		{"plain", "A=1\nB=two words\n", []KV{{"A", "1"}, {"B", "two words"}}, ""},
		{"comments and blanks", "# c\n\n   \nA=1\n  # indented comment\n", []KV{{"A", "1"}}, ""},
		{"value verbatim: quotes and spaces kept", `Q="quoted" ` + "\nS='x'\n", []KV{{"Q", `"quoted" `}, {"S", "'x'"}}, ""},
		{"value with =", "URL=a=b=c\n", []KV{{"URL", "a=b=c"}}, ""},
		{"empty value", "E=\n", []KV{{"E", ""}}, ""},
		{"key alone from host", "FROM_HOST\nMISSING\nEMPTY\n", []KV{{"FROM_HOST", "h"}, {"EMPTY", ""}}, ""},
		{"leading whitespace trimmed", "   A=1\n\tB=2\n", []KV{{"A", "1"}, {"B", "2"}}, ""},
		{"CRLF", "A=1\r\nB=2\r\n", []KV{{"A", "1"}, {"B", "2"}}, ""},
		{"BOM", "\ufeffA=1\n", []KV{{"A", "1"}}, ""},
		{"no final newline", "A=1", []KV{{"A", "1"}}, ""},
		{"later wins in Map", "A=1\nA=2\n", []KV{{"A", "1"}, {"A", "2"}}, ""},
		{"whitespace in name", "MY VAR=1\n", nil, `app.env:1: variable "MY VAR" contains whitespace`},
		{"no name", "=1\n", nil, "app.env:1: no variable name"},
		{"error line number", "A=1\n# x\nB C=2\n", nil, "app.env:3:"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			got, err := ParseEnvFile("app.env", strings.NewReader(tc.in), host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseEnvFile() error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseEnvFile() = %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseEnvFile() = %q, want %q", got, tc.want)
			}
		})
	}
	if m := Map([]KV{{"A", "1"}, {"A", "2"}}); m["A"] != "2" {
		t.Errorf("Map: later entry should win, got %v", m)
	}
}

func TestParseBuildArg(t *testing.T) {
	host := env(map[string]string{"VERSION": "1.2"})
	if kv, ok, err := ParseBuildArg("A=b=c", host); err != nil || !ok || kv != (KV{"A", "b=c"}) {
		t.Errorf("A=b=c → %v %v %v", kv, ok, err)
	}
	if kv, ok, err := ParseBuildArg("VERSION", host); err != nil || !ok || kv.Value != "1.2" {
		t.Errorf("VERSION → %v %v %v", kv, ok, err)
	}
	if _, ok, err := ParseBuildArg("UNSET", host); err != nil || ok {
		t.Errorf("UNSET → ok %v err %v, want left unset", ok, err)
	}
	if _, _, err := ParseBuildArg("1BAD=x", host); err == nil {
		t.Errorf("1BAD accepted")
	}
}

func TestSecretLookingBuildArgs(t *testing.T) {
	for name, secret := range map[string]bool{
		"NPM_TOKEN": true, "GITHUB_TOKEN": true, "DB_PASSWORD": true, "aws_secret_access_key": true,
		"STRIPE_API_KEY": true, "SSH_PRIVATE_KEY": true, "GOOGLE_CREDENTIALS": true,
		"NODE_ENV": false, "VERSION": false, "API_URL": false, "TOKENIZER_MODEL": true,
	} {
		if got := LooksSecret(name); got != secret {
			t.Errorf("LooksSecret(%s) = %v, want %v", name, got, secret)
		}
	}
	err := CheckBuildArgs([]KV{{"VERSION", "1"}, {"NPM_TOKEN", "x"}}, false)
	if err == nil || !strings.Contains(err.Error(), "--secret id=NPM_TOKEN,env=NPM_TOKEN") {
		t.Errorf("CheckBuildArgs() = %v", err)
	}
	if err := CheckBuildArgs([]KV{{"NPM_TOKEN", "x"}}, true); err != nil {
		t.Errorf("CheckBuildArgs(allow) = %v", err)
	}
}

func TestParseSecretAndMount(t *testing.T) {
	dir := t.TempDir()
	npmrc := filepath.Join(dir, ".npmrc")
	os.WriteFile(npmrc, []byte("//registry/:_authToken=abcdef123456\n"), 0o600)
	host := env(map[string]string{"CI_TOKEN": "tok-987654321"})

	var ss Secrets
	for _, s := range []string{"id=TOKEN,env=CI_TOKEN", "id=npmrc,src=" + npmrc, "type=file,id=cfg,src=" + npmrc} {
		sec, err := ParseSecret(s, host)
		if err != nil {
			t.Fatalf("ParseSecret(%q) = %v", s, err)
		}
		ss = append(ss, sec)
	}
	for _, bad := range []struct{ in, want string }{
		{"id=x", "exactly one of env=VAR or src=FILE"},
		{"env=CI_TOKEN", "needs id=NAME"},
		{"id=a/b,env=CI_TOKEN", "needs id=NAME"},
		{"id=x,env=NOPE", "NOPE is not set"},
		{"id=x,src=" + filepath.Join(dir, "missing"), "reading"},
		{"id=x,env=CI_TOKEN,color=red", `unknown key "color"`},
		{"id=x,type=file,env=CI_TOKEN", "type=file does not match"},
	} {
		if _, err := ParseSecret(bad.in, host); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseSecret(%q) = %v, want %q", bad.in, err, bad.want)
		}
	}

	envs, cleanup, err := ss.Mount()
	if err != nil {
		t.Fatal(err)
	}
	secretsDir := envs["PACKER_SECRETS"]
	if envs["TOKEN"] != "tok-987654321" {
		t.Errorf("env secret not exposed as TOKEN: %v", envs)
	}
	if envs["NPM_CONFIG_USERCONFIG"] != filepath.Join(secretsDir, "npmrc") {
		t.Errorf("npmrc not wired to NPM_CONFIG_USERCONFIG: %v", envs)
	}
	st, err := os.Stat(filepath.Join(secretsDir, "cfg"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v %v", st, err)
	}
	cleanup()
	if _, err := os.Stat(secretsDir); err == nil {
		t.Errorf("secrets directory survives cleanup")
	}
}

func TestRedactor(t *testing.T) {
	ss := Secrets{{ID: "t", value: []byte("s3cr3t-value")}}
	var out bytes.Buffer
	r := ss.Redact(&out)
	// The value split across writes, as a pipe may deliver it.
	for _, chunk := range []string{"token is s3cr", "3t-value and\nnext line ", "s3cr3t-val", "ue"} {
		r.Write([]byte(chunk))
	}
	r.Flush()
	if strings.Contains(out.String(), "s3cr3t") || strings.Count(out.String(), "****") != 2 {
		t.Errorf("redacted output = %q", out.String())
	}
}

func guardImage(t *testing.T, ss Secrets, entries []layers.Entry, env []string) error {
	t.Helper()
	img, ours := testImage(t, entries, env)
	return ss.Guard(img, ours)
}

// testImage is an image with one layer of entries (the one packer wrote)
// and env in its config.
func testImage(t *testing.T, entries []layers.Entry, env []string) (v1.Image, map[v1.Hash]string) {
	t.Helper()
	var buf bytes.Buffer
	if err := layers.WriteEntries(&buf, entries); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.Config.Env = env
	img, _ = mutate.ConfigFile(img, cfg)
	d, _ := l.Digest()
	return img, map[v1.Hash]string{d: "app"}
}

func TestGuard(t *testing.T) {
	canary := "canary-5f1d2e7a9b"
	ss := Secrets{{ID: "npmrc", value: []byte("//r/:_authToken=" + canary + "\nalways-auth=true\n")}}
	big := bytes.Repeat([]byte("x"), 256<<10-5) // the canary straddles a read boundary
	for _, tc := range []struct {
		description string
		entries     []layers.Entry
		env         []string
		wantWhere   string
		wantPath    string
	}{
		{"clean", []layers.Entry{{Name: "/app/main.js", Mode: 0o644, Data: []byte("console.log(1)")}}, []string{"A=1"}, "", ""},
		{"whole file copied", []layers.Entry{{Name: "/app/.npmrc", Mode: 0o644, Data: ss[0].value}}, nil, "layer app", "app/.npmrc"},
		{"one line of it copied", []layers.Entry{{Name: "/app/cfg.js", Mode: 0o644, Data: []byte("token='" + canary + "'")}}, nil, "layer app", "app/cfg.js"},
		{"across a read boundary", []layers.Entry{{Name: "/app/big.bin", Mode: 0o644, Data: append(append([]byte{}, big...), []byte("_authToken="+canary)...)}}, nil, "layer app", "app/big.bin"},
		{"in a file name", []layers.Entry{{Name: "/app/_authToken=" + canary, Mode: 0o644}}, nil, "layer app", "app/****"},
		{"in the config", nil, []string{"LEAK=//r/:_authToken=" + canary}, "config", ""},
		{"base64", []layers.Entry{{Name: "/app/t.b64", Mode: 0o644, Data: []byte(base64.StdEncoding.EncodeToString([]byte(canary)))}}, nil, "layer app", "app/t.b64"},
		{"base64 url, unpadded", []layers.Entry{{Name: "/app/t.txt", Mode: 0o644, Data: []byte("x=" + base64.RawURLEncoding.EncodeToString([]byte(canary)))}}, nil, "layer app", "app/t.txt"},
		{"inside a base64 auth field", []layers.Entry{{Name: "/app/config.json", Mode: 0o644, Data: []byte(`{"auths":{"r":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("user:"+canary)) + `"}}}`)}}, nil, "layer app", "app/config.json"},
		{"hex", []layers.Entry{{Name: "/app/t.hex", Mode: 0o644, Data: []byte(hex.EncodeToString([]byte(canary)))}}, nil, "layer app", "app/t.hex"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			err := guardImage(t, ss, tc.entries, tc.env)
			if tc.wantWhere == "" {
				if err != nil {
					t.Fatalf("Guard() = %v", err)
				}
				return
			}
			var leak *LeakError
			if !errors.As(err, &leak) || leak.Where != tc.wantWhere || leak.Path != tc.wantPath || leak.Secret != "npmrc" {
				t.Fatalf("Guard() = %#v, want a leak in %s at %s", err, tc.wantWhere, tc.wantPath)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("the error message repeats the secret: %v", err)
			}
		})
	}
}

// A secret of 256 KiB or more (a CA bundle with a few corporate roots
// added) once made the scan spin: the overlap kept between reads filled
// the whole buffer. Any size must finish, and a copy must still be found.
func TestGuardLargeSecret(t *testing.T) {
	var bundle bytes.Buffer
	for i := 0; bundle.Len() < 1<<20; i++ {
		fmt.Fprintf(&bundle, "-----BEGIN CERTIFICATE-----\nMIIC%060d\n-----END CERTIFICATE-----\n", i)
	}
	val := bundle.Bytes()
	ss := Secrets{{ID: "ca", value: val}}
	if n := len(guardedValues(val)); n > 2 {
		t.Errorf("a 1 MiB CA bundle gives %d needles; its public certificates must not each become one", n)
	}
	filler := bytes.Repeat([]byte("y"), 700<<10) // the copy straddles a read boundary
	for _, tc := range []struct {
		description string
		data        []byte
		leak        bool
	}{
		{"clean layer", bytes.Repeat([]byte("z"), 3<<20), false},
		{"one public certificate of it", []byte("-----BEGIN CERTIFICATE-----\nMIIC" + fmt.Sprintf("%060d", 7) + "\n-----END CERTIFICATE-----\n"), false},
		{"the whole bundle copied", val, true},
		{"copied after 700 KiB", append(append([]byte{}, filler...), val...), true},
	} {
		t.Run(tc.description, func(t *testing.T) {
			img, ours := testImage(t, []layers.Entry{{Name: "/app/certs.pem", Mode: 0o644, Data: tc.data}}, nil)
			done := make(chan error, 1)
			go func() { done <- ss.Guard(img, ours) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("Guard() did not return within 60 s for a 1 MiB secret")
			}
			var leak *LeakError
			if got := errors.As(err, &leak); got != tc.leak {
				t.Fatalf("Guard() = %v, want leak %v", err, tc.leak)
			}
			if tc.leak && (leak.Secret != "ca" || leak.Path != "app/certs.pem") {
				t.Errorf("Guard() = %#v, want secret ca at app/certs.pem", leak)
			}
		})
	}
}

// A private key inside a PEM secret is guarded block by block and line by
// line, even when the secret also holds certificates.
func TestGuardedValuesPEM(t *testing.T) {
	key := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----"
	v := []byte("-----BEGIN CERTIFICATE-----\nMIIBcertificatebody\n-----END CERTIFICATE-----\n" + key + "\n")
	got := map[string]bool{}
	for _, g := range guardedValues(v) {
		got[string(g)] = true
	}
	for _, want := range []string{key, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "BKcwggSjAgEAAoIBAQC7"} {
		if !got[want] {
			t.Errorf("guardedValues() lacks %q", want)
		}
	}
	if got["MIIBcertificatebody"] {
		t.Errorf("guardedValues() guards a public certificate's line")
	}
}

// TestGuardPercentEncoded: a password with reserved characters, written
// percent-encoded (into a URL), is found although its plain form is not
// in the file.
func TestGuardPercentEncoded(t *testing.T) {
	pw := "p@ss/w0rd+x=1"
	ss := Secrets{{ID: "db", value: []byte(pw)}}
	for _, form := range []string{url.QueryEscape(pw), url.PathEscape(pw)} {
		data := []byte("DATABASE_URL=postgres://app:" + form + "@db/app")
		if bytes.Contains(data, []byte(pw)) {
			t.Fatalf("the test's file holds the plain value")
		}
		err := guardImage(t, ss, []layers.Entry{{Name: "/app/.config", Mode: 0o644, Data: data}}, nil)
		var leak *LeakError
		if !errors.As(err, &leak) || leak.Secret != "db" {
			t.Errorf("%s: Guard() = %v, want the db secret found", form, err)
		}
	}
}
