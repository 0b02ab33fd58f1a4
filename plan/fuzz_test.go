package plan

import (
	"encoding/json"
	"testing"
)

// FuzzPlanJSON: a --plan file of any content decodes and validates or
// fails; a plan that validates serialises again.
func FuzzPlanJSON(f *testing.F) {
	f.Add([]byte(`{"provider":"x","base":"scratch","layers":[{"name":"app","from":"src","dest":"/app"}],"entrypoint":["/app/x"]}`))
	f.Add([]byte(`{"provider":"x","base":"b","steps":[{"name":"s","run":["true"],"needs":["t"]}],"layers":[]}`))
	f.Add([]byte(`{"system":{"run":["libpq5; rm"]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var p Plan
		if json.Unmarshal(raw, &p) != nil || p.Validate() != nil {
			return
		}
		if _, err := p.JSON(); err != nil {
			t.Fatalf("a valid plan does not serialise: %v", err)
		}
	})
}
