package cmd

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/spf13/cobra"
)

func newLogin(ro *rootOptions) *cobra.Command {
	var user, password string
	var stdin bool
	var insecure []string
	c := &cobra.Command{
		Use:   "login REGISTRY -u USER --password-stdin",
		Short: "Store registry credentials as docker login does (through the configured credential store when there is one)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if user == "" {
				return fmt.Errorf("-u/--username is required")
			}
			if stdin {
				b, err := io.ReadAll(bufio.NewReader(c.InOrStdin()))
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			} else if password != "" {
				fmt.Fprintln(c.ErrOrStderr(), "packer: warning: a password on the command line can end up in shell history; use --password-stdin")
			}
			if password == "" {
				return fmt.Errorf("no password: pipe it to --password-stdin")
			}
			host := args[0]
			var opts []name.Option
			for _, i := range insecure {
				if i == host {
					opts = append(opts, name.Insecure)
				}
			}
			reg, err := name.NewRegistry(host, opts...)
			if err != nil {
				return fmt.Errorf("invalid registry %q: %w", host, err)
			}
			// Check the credentials before storing them, as docker login does.
			auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
			tr, err := transport.NewWithContext(c.Context(), reg, auth, http.DefaultTransport, []string{reg.Scope(transport.PullScope)})
			if err != nil {
				return fmt.Errorf("logging in to %s: %w; check the username and password", host, err)
			}
			req, _ := http.NewRequestWithContext(c.Context(), http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				return fmt.Errorf("logging in to %s: %w", host, err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				return fmt.Errorf("logging in to %s: wrong username or password (HTTP %d); nothing was stored", host, resp.StatusCode)
			}
			cf, err := dockerconfig.Load(dockerconfig.Dir())
			if err != nil {
				return fmt.Errorf("reading the docker config: %w", err)
			}
			server := reg.RegistryStr()
			if server == name.DefaultRegistry {
				server = authn.DefaultAuthKey
			}
			if err := cf.GetCredentialsStore(server).Store(types.AuthConfig{Username: user, Password: password, ServerAddress: server}); err != nil {
				return fmt.Errorf("storing the credentials: %w", err)
			}
			fmt.Fprintf(c.ErrOrStderr(), "packer: credentials for %s stored (%s)\n", server, storeName(cf.CredentialsStore, cf.CredentialHelpers[server], cf.Filename))
			return nil
		},
	}
	c.Flags().StringVarP(&user, "username", "u", "", "username")
	c.Flags().StringVarP(&password, "password", "p", "", "password (prefer --password-stdin)")
	c.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from stdin")
	c.Flags().StringArrayVar(&insecure, "insecure-registry", nil, "the registry is reached over plain HTTP")
	return c
}

func storeName(store, helper, file string) string {
	switch {
	case helper != "":
		return "credential helper docker-credential-" + helper
	case store != "":
		return "credential store docker-credential-" + store
	}
	return file
}
