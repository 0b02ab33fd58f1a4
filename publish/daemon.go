package publish

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/packer-build/packer/oci"
)

// DefaultDockerHost is where Docker Engine listens when DOCKER_HOST is
// unset.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// Daemon loads the image into a local Docker Engine (or podman's
// docker-compatible service) through its API: POST /images/load with the
// docker-archive streamed as the body, as `docker load` does.
//
// The API call is written here rather than through go-containerregistry's
// daemon package: that one brings the Docker client module and its
// dependencies for one HTTP request.
type Daemon struct {
	// Host is DOCKER_HOST's form: unix:///path or tcp://host:port.
	Host string
	Tags []name.Tag
}

var _ Publisher = (*Daemon)(nil)

// DaemonHost is $DOCKER_HOST, else Docker's default socket.
func DaemonHost() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return DefaultDockerHost
}

// Check implements Publisher.
func (d *Daemon) Check(platforms int) error {
	if platforms > 1 {
		return fmt.Errorf("--load puts one platform's image into the daemon; build one --platform, or push the %d platforms", platforms)
	}
	if len(d.Tags) == 0 {
		return fmt.Errorf("--load needs a name for the image in the daemon; pass -t NAME[:TAG]")
	}
	if _, _, err := d.endpoint(); err != nil {
		return err
	}
	return nil
}

// endpoint is the HTTP client and base URL of the daemon's API.
func (d *Daemon) endpoint() (*http.Client, string, error) {
	u, err := url.Parse(d.Host)
	if err != nil {
		return nil, "", fmt.Errorf("DOCKER_HOST %q: %v", d.Host, err)
	}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}, "http://docker", nil
	case "tcp", "http":
		return http.DefaultClient, "http://" + u.Host, nil
	}
	return nil, "", fmt.Errorf("DOCKER_HOST %q: packer loads through unix:///PATH or tcp://HOST:PORT (a TLS or ssh:// daemon: write -o tar:FILE and docker load -i FILE)", d.Host)
}

// Publish implements Publisher.
func (d *Daemon) Publish(ctx context.Context, b *oci.Built, att oci.Attachments) (*Published, error) {
	img, ok := b.Result.(v1.Image)
	if !ok {
		return nil, fmt.Errorf("--load puts one platform's image into the daemon; build one --platform")
	}
	client, base, err := d.endpoint()
	if err != nil {
		return nil, err
	}
	refs := map[name.Reference]v1.Image{}
	for _, t := range d.Tags {
		refs[t] = img
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.MultiRefWrite(refs, pw)) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1.41/images/load?quiet=1", pr)
	if err != nil {
		_ = pr.Close()
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := client.Do(req)
	if err != nil {
		_ = pr.Close()
		return nil, fmt.Errorf("loading into the daemon at %s: %v; is it running (docker info, or podman system service)? Set DOCKER_HOST to its socket", d.Host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("the daemon at %s refused the image (HTTP %d): %s", d.Host, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	// The answer is a stream of JSON messages; an error may come in one.
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		var m struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Error != "" {
			return nil, fmt.Errorf("the daemon at %s could not load the image: %s", d.Host, m.Error)
		}
	}
	p := &Published{}
	for _, t := range d.Tags {
		p.Tags = append(p.Tags, t.String())
	}
	if len(att.Referrers) > 0 {
		p.Dropped = append(p.Dropped, "SBOM")
	}
	return p, nil
}

func (d *Daemon) String() string { return "daemon " + d.Host }
