// Package dashboards holds the Grafana dashboards, Prometheus recording rules
// and alerts that ship with liveswitch_exporter, and the tests that keep them
// true to the exporter's metrics. FS embeds them so that programs (and tests)
// can read exactly what is shipped.
package dashboards

import "embed"

// FS holds grafana/*.json and prometheus/*.yml as shipped.
//
//go:embed grafana/*.json prometheus/*.yml
var FS embed.FS
