package applications

import (
	"bytes"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

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
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

func writeExposition(t testing.TB, c prometheus.Collector, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(exposition(t, c)), 0o644); err != nil {
		t.Fatal(err)
	}
}
