package applications

import (
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// t0 is the event time the tests' events are stamped after.
var t0 = time.UnixMilli(1700000000000)

func gather(c prometheus.Collector) ([]*dto.MetricFamily, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return reg.Gather()
}

// exposition renders c in the text format.
func exposition(t testing.TB, c prometheus.Collector) string {
	t.Helper()
	families, err := gather(c)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(families)) // CollectAndFormat keeps only the families named
	for i, mf := range families {
		names[i] = mf.GetName()
	}
	text, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain, names...)
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

func writeExposition(t testing.TB, c prometheus.Collector, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(exposition(t, c)), 0o644); err != nil {
		t.Fatal(err)
	}
}
