// Package exporter is the HTTP face of liveswitch_exporter: the webhook that
// LiveSwitch posts to, the metrics endpoint Prometheus scrapes, the status
// page and read API people look at, health and readiness probes, and the
// server that carries them. It knows the fleet only
// through the small interfaces it declares, and nothing of storage.
package exporter
