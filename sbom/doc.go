// Package sbom will produce SPDX and CycloneDX documents from what a build
// knows (issue: supply chain). Nothing here yet.
package sbom
