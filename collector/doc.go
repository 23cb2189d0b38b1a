// Package collector is the domain of liveswitch_exporter: the LiveSwitch
// server events, the fleet they describe, the rules by which one event changes
// that fleet, and the Prometheus collector that turns a snapshot of the fleet
// into metrics at scrape time.
//
// It knows nothing of HTTP or of any particular storage engine: events come in
// as bytes, the fleet is persisted through the small Store interface of the
// storage package, and metrics go out through prometheus.Collector.
package collector
