package fleet

import "testing"

// TestSharedCountersNeverGoBack: a replica whose fleet is replaced by one
// that counted less (a log rebuilt by a replica that had folded less) keeps
// showing counters that only grow, while saving the shared ones.
func TestSharedCountersNeverGoBack(t *testing.T) {
	f := New()
	f.Count(&Stats{Outcomes: [NumOutcomes]uint64{OutcomeApplied: 100, OutcomeInvalid: 3}})
	var less Stats
	less.Outcomes[OutcomeApplied] = 60
	less.Forgotten[ForgetDeleted] = 2
	f.Replace(map[Key]*Server{}, &less, nil)
	shown := f.Snapshot().Stats
	if shown.Outcomes[OutcomeApplied] != 100 || shown.Outcomes[OutcomeInvalid] != 3 || shown.Forgotten[ForgetDeleted] != 2 {
		t.Fatalf("after a fleet that counted less: %+v", shown)
	}
	f.Count(&Stats{Outcomes: [NumOutcomes]uint64{OutcomeApplied: 5}})
	if got := f.Snapshot().Stats.Outcomes[OutcomeApplied]; got != 105 {
		t.Fatalf("applied %d after 5 more, want 105", got)
	}
	if got := f.FoldedSnapshot().Stats.Outcomes[OutcomeApplied]; got != 65 {
		t.Fatalf("shared applied %d, want 65 (what the log says)", got)
	}
}
