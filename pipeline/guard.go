package pipeline

import (
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/buildargs"
	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/oci"
)

// guard fails the build, before anything is published, when a secret's
// value appears in a layer packer wrote or in an image config or manifest;
// the leaking blob is removed from the cache too.
func guard(b *oci.Built, rep *builder.Report, secrets buildargs.Secrets, store *layers.Store) error {
	if len(secrets) == 0 {
		return nil
	}
	for _, img := range b.Images {
		ours := map[v1.Hash]string{}
		for _, l := range rep.Layers[img.Platform.String()] {
			ours[l.Digest] = l.Name
		}
		if err := secrets.Guard(img.Image, ours); err != nil {
			var leak *buildargs.LeakError
			if errors.As(err, &leak) {
				for d, name := range ours {
					if "layer "+name == leak.Where {
						if rerr := store.Remove(d); rerr != nil {
							return fmt.Errorf("%w\nremoving the leaking layer from the cache failed too: %v; delete %s from the cache directory", err, rerr, d)
						}
					}
				}
			}
			return err
		}
	}
	return nil
}
