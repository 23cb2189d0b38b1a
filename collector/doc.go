// Package collector turns a snapshot of the fleet into Prometheus metrics
// at scrape time: the per-server series (liveswitch_server_*), the totals by
// origin, region and deployment, the exporter's own counters
// (liveswitch_exporter_*) and, with WithGatewayAPI, the series of the
// Gateway's REST API (liveswitch_api_*, liveswitch_mediaserver_*,
// liveswitch_application_*). Every scrape builds all of them from one
// fleet.Snapshot, so that values never mix two moments. The rest of the
// pipeline lives below it: collector/event decodes webhook bodies,
// collector/fleet holds the domain and its rules, collector/writer commits
// changes to a store, collector/replica shares the fleet through Redis,
// collector/gateway polls the Gateway and collector/applications counts
// application webhooks.
package collector
