package cmd

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/packer-build/packer/registry"
)

// registryFlags are how build, sbom and verify reach registries.
type registryFlags struct {
	insecure []string
	timeout  time.Duration
	ca       string
	mirrors  []string
}

func (r *registryFlags) add(f *pflag.FlagSet) {
	f.StringArrayVar(&r.insecure, "insecure-registry", nil, "registry host[:port] to reach over plain HTTP (localhost and 127.0.0.1 always are)")
	f.StringVar(&r.ca, "registry-ca", "", "PEM file of certificate authorities trusted for registries, besides the system's (a registry with a private CA; SSL_CERT_FILE works too)")
	f.StringArrayVar(&r.mirrors, "registry-mirror", nil, "registry host[:port][/prefix] Docker Hub pulls go through first, as docker's registry-mirrors (repeatable; also PACKER_REGISTRY_MIRROR, comma separated)")
	f.DurationVar(&r.timeout, "registry-timeout", registry.DefaultTimeout, "fail a registry request that makes no progress (no answer, no bytes moving) for this long; requests are retried on 429 and 5xx, honouring Retry-After")
}

// client is the registry client the flags describe, checked (a CA file
// that cannot be read is refused before anything runs).
func (r *registryFlags) client() (*registry.Client, error) {
	mirrors := r.mirrors
	if len(mirrors) == 0 {
		for _, m := range strings.Split(os.Getenv("PACKER_REGISTRY_MIRROR"), ",") {
			if m = strings.TrimSpace(m); m != "" {
				mirrors = append(mirrors, m)
			}
		}
	}
	for _, m := range mirrors {
		if strings.Contains(m, "://") {
			return nil, &UsageError{fmt.Errorf("--registry-mirror %q: give host[:port][/prefix] without a scheme (plain HTTP mirrors also need --insecure-registry HOST)", m)}
		}
	}
	c := &registry.Client{Insecure: r.insecure, Timeout: r.timeout, CAFile: r.ca, Mirrors: mirrors}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return c, nil
}
