// Package collector is the domain of liveswitch_exporter: the LiveSwitch
// server events, the fleet they describe, the rules by which one event changes
// that fleet, and the Prometheus collector that turns a snapshot of the fleet
// into metrics at scrape time.
//
// Every change is a command (the events of a webhook, a forget, a sweep, an
// Observation of the Gateway's REST API) applied by the Writer with Step,
// or Reconcile for an observation. A Writer either owns its fleet, committing
// the changed records to a storage.Store (NewWriter), or shares it with other
// replicas by appending commands to a storage.Log that every replica folds in
// the same order (NewReplica).
//
// The decoder also reads application webhooks (DecodeApplications, with the
// same bounds); collector/applications counts them, outside the fleet.
//
// It knows nothing of HTTP or of any particular storage engine: events come in
// as bytes, the fleet is persisted through the small interfaces of the
// storage package, and metrics go out through prometheus.Collector.
package collector
