// Package builtin lists packer's providers in detection order.
package builtin

import (
	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/detect/golang"
	"github.com/packer-build/packer/detect/node"
	"github.com/packer-build/packer/detect/python"
	"github.com/packer-build/packer/detect/static"
)

// Providers returns the providers in the order they are tried; the first
// whose Detect matches plans the build. Specific providers come before
// generic ones.
func Providers() []detect.Provider {
	return []detect.Provider{
		golang.Provider{},
		node.Provider{},
		python.Provider{},
		static.Provider{},
	}
}
