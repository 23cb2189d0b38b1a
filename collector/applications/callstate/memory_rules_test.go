package callstate_test

import (
	"testing"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/callstate"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/statetest"
)

func TestMemoryStateRules(t *testing.T) {
	statetest.Run(t, func(_ *testing.T, l callstate.Limits) callstate.State { return callstate.NewMemory(l) })
}
