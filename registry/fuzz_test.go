package registry

import (
	"strings"
	"testing"
)

// FuzzLayoutRef: oci:DIR[:TAG] splits without panicking, and the parts
// put back together give the input (an empty TAG after ":" is none).
func FuzzLayoutRef(f *testing.F) {
	for _, s := range []string{"oci:out", "oci:out:v1", "oci:/a/b:c/d", "oci::", "oci:C:\\x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dir, tag := SplitLayoutRef(s)
		got := dir
		if tag != "" {
			got += ":" + tag
		}
		if in := strings.TrimPrefix(s, LayoutPrefix); got != in && got+":" != in {
			t.Fatalf("SplitLayoutRef(%q) = %q, %q", s, dir, tag)
		}
	})
}
