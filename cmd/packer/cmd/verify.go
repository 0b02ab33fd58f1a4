package cmd

import (
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/packer-build/packer/sign"
)

func newVerify(ro *rootOptions) *cobra.Command {
	var key, identity, issuer, trustedRoot string
	var ignoreTlog bool
	var reg registryFlags
	c := &cobra.Command{
		Use:   "verify IMAGE (--key cosign.pub | --certificate-identity ID --certificate-oidc-issuer URL)",
		Short: "Check an image's cosign signature and its signed SBOM and provenance attestations (key or keyless)",
		Long: `Check an image's cosign signature and attestations.

With --key, they must verify with that public key. Keyless (--certificate-identity and
--certificate-oidc-issuer), each must carry a Fulcio certificate for that identity and issuer,
chaining to --trusted-root (default $SIGSTORE_ROOT_FILE: Fulcio's CA certificates in PEM, or
sigstore's trusted_root.json), valid when the transparency log recorded the signature.
A Rekor bundle is checked (its signed entry timestamp, and that it records this signature)
against the log keys of the trusted root or $SIGSTORE_REKOR_PUBLIC_KEY.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			v := &sign.Verifier{IgnoreTlog: ignoreTlog}
			switch {
			case key != "" && (identity != "" || issuer != ""):
				return &UsageError{fmt.Errorf("--key and --certificate-identity/--certificate-oidc-issuer exclude each other: a signature is made with a key or keyless")}
			case key != "":
				pub, err := sign.LoadPublicKey(key)
				if err != nil {
					return err
				}
				v.Key = pub
			case identity == "" && issuer == "":
				return &UsageError{fmt.Errorf("say what to verify against: --key cosign.pub for a key, or --certificate-identity and --certificate-oidc-issuer for a keyless signature")}
			case identity == "" || issuer == "":
				return &UsageError{fmt.Errorf("keyless verification needs both --certificate-identity and --certificate-oidc-issuer (the build log of --sign-keyless prints them)")}
			default:
				v.Identity, v.Issuer = identity, issuer
				if trustedRoot == "" {
					trustedRoot = os.Getenv("SIGSTORE_ROOT_FILE")
				}
				if trustedRoot == "" {
					return fmt.Errorf("keyless verification needs Fulcio's root: pass --trusted-root FILE (its CA certificates in PEM, or sigstore's trusted_root.json) or set SIGSTORE_ROOT_FILE; packer does not fetch sigstore's TUF root")
				}
				roots, logKeys, err := sign.TrustedRoot(trustedRoot)
				if err != nil {
					return err
				}
				v.Roots, v.LogKeys = roots, logKeys
			}
			if f := os.Getenv("SIGSTORE_REKOR_PUBLIC_KEY"); f != "" {
				k, err := sign.LogKey(f)
				if err != nil {
					return fmt.Errorf("SIGSTORE_REKOR_PUBLIC_KEY: %w", err)
				}
				v.LogKeys = append(v.LogKeys, k)
			}
			if trustedRoot != "" && v.Key != nil {
				_, logKeys, err := sign.TrustedRoot(trustedRoot)
				if err != nil {
					return err
				}
				v.LogKeys = append(v.LogKeys, logKeys...)
			}
			against := key
			if v.Keyless() {
				against = identity + " (issuer " + issuer + ")"
			}

			client, err := reg.client()
			if err != nil {
				return err
			}
			r, err := client.ParseReference(args[0])
			if err != nil {
				return fmt.Errorf("invalid image %q: %w", args[0], err)
			}
			opts := client.RemoteOptions(c.Context())
			desc, err := remote.Head(r, opts...)
			if err != nil {
				return fmt.Errorf("fetching %s: %w", args[0], err)
			}
			d := desc.Digest
			sigImg, err := remote.Image(r.Context().Tag(sign.Tag(d)), opts...)
			if err != nil {
				return &VerifyError{fmt.Errorf("%s@%s has no signature (%s): %w", r.Context(), d, sign.Tag(d), err)}
			}
			n, why, err := v.Signatures(sigImg, d)
			if err != nil {
				return err
			}
			if n == 0 {
				return &VerifyError{fmt.Errorf("%s@%s: no signature verifies against %s: %s", r.Context(), d, against, reasons(why, "the image was changed or signed by someone else"))}
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "%s@%s: signature verified against %s (%d)\n", r.Context(), d, against, n)
			if v.Unchecked > 0 {
				fmt.Fprintf(c.ErrOrStderr(), "packer: note: the signature's transparency log entry was not checked (no log key: set SIGSTORE_REKOR_PUBLIC_KEY, or pass a --trusted-root trusted_root.json)\n")
			}
			attImg, err := remote.Image(r.Context().Tag(sign.AttestationTag(d)), opts...)
			if err != nil {
				return &VerifyError{fmt.Errorf("%s@%s has no attestations (%s): %w", r.Context(), d, sign.AttestationTag(d), err)}
			}
			types, why, err := v.Attestations(attImg, d)
			if err != nil {
				return err
			}
			if len(types) == 0 {
				return &VerifyError{fmt.Errorf("%s@%s: no attestation verifies against %s: %s", r.Context(), d, against, reasons(why, "none is signed"))}
			}
			fmt.Fprintf(w, "%s@%s: attestations verified: %s\n", r.Context(), d, strings.Join(types, ", "))
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "public key (cosign.pub) the image was signed with")
	c.Flags().StringVar(&identity, "certificate-identity", "", "keyless: the signer's identity in its Fulcio certificate (a workflow URL or an email)")
	c.Flags().StringVar(&issuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer that vouched for the identity (e.g. https://token.actions.githubusercontent.com)")
	c.Flags().StringVar(&trustedRoot, "trusted-root", "", "keyless: Fulcio's CA certificates (PEM) or sigstore's trusted_root.json (default $SIGSTORE_ROOT_FILE)")
	c.Flags().BoolVar(&ignoreTlog, "insecure-ignore-tlog", false, "keyless: accept a signature without a transparency log entry, checking its certificate at the current time")
	reg.add(c.Flags())
	return c
}

// reasons joins why signatures were rejected (each once), or says def.
func reasons(why []string, def string) string {
	seen := map[string]bool{}
	var out []string
	for _, w := range why {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return def
	}
	return strings.Join(out, "; ")
}
