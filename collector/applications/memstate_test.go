package applications_test

import (
	"testing"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/statetest"
)

func TestMemoryStateRules(t *testing.T) {
	statetest.Run(t, func(_ *testing.T, l applications.Limits) applications.State { return applications.NewMemoryState(l) })
}
