package cmd

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/packer-build/packer/sign"
)

func newVerify(ro *rootOptions) *cobra.Command {
	var key string
	var reg registryFlags
	c := &cobra.Command{
		Use:   "verify IMAGE --key cosign.pub",
		Short: "Check an image's cosign signature and its signed SBOM and provenance attestations",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if key == "" {
				return fmt.Errorf("--key is required: the public key (cosign.pub) the image was signed for")
			}
			pub, err := sign.LoadPublicKey(key)
			if err != nil {
				return err
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
				return fmt.Errorf("%s@%s has no signature (%s): %w", r.Context(), d, sign.Tag(d), err)
			}
			n, err := sign.VerifySignature(pub, sigImg, d)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%s@%s: no signature verifies with %s; the image was changed or signed with another key", r.Context(), d, key)
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "%s@%s: signature verified (%d)\n", r.Context(), d, n)
			attImg, err := remote.Image(r.Context().Tag(sign.AttestationTag(d)), opts...)
			if err != nil {
				return fmt.Errorf("%s@%s has no attestations (%s): %w", r.Context(), d, sign.AttestationTag(d), err)
			}
			types, err := sign.VerifyAttestations(pub, attImg, d)
			if err != nil {
				return err
			}
			if len(types) == 0 {
				return fmt.Errorf("%s@%s: no attestation verifies with %s", r.Context(), d, key)
			}
			fmt.Fprintf(w, "%s@%s: attestations verified: %s\n", r.Context(), d, strings.Join(types, ", "))
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "public key (cosign.pub)")
	reg.add(c.Flags())
	return c
}
