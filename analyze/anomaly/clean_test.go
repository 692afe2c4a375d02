package anomaly

import (
	"testing"
)

// Normal traffic gives no finding: forty generated minutes, each with its
// own noise, and no anomaly planted.
func TestNormalTrafficGivesNoFindings(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		if r := detect(t, generate(seed, plantNothing)); len(r.Findings) != 0 {
			t.Errorf("seed %d:\n%s", seed, describe(r))
		}
	}
}
