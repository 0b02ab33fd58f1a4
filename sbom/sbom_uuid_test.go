package sbom

import (
	"testing"

	"github.com/google/uuid"
)

// TestUUID5: serial numbers are RFC 4122 version-5 UUIDs (variant 10),
// the same for the same subject and different for another.
func TestUUID5(t *testing.T) {
	a, b := uuid5("spdx:sha256:aa"), uuid5("spdx:sha256:bb")
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 5 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("uuid5 = %s (%v): version %d, variant %v", a, err, u.Version(), u.Variant())
	}
	if a != uuid5("spdx:sha256:aa") || a == b {
		t.Errorf("uuid5 is not a function of its input: %s %s", a, b)
	}
}
