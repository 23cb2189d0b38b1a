// Package fleet is the exporter's domain: the LiveSwitch server processes
// it tracks (Server, State), the one rule by which an event changes a
// server (Step) and the one by which the Gateway's REST API listing a media
// server does (Reconcile, with an Observation), the bounds on the fleet
// (Limits), each server's recent history, and the counters of what became
// of the events (Outcome, Stats). A Fleet is changed only through a
// Staging, one group of commands at a time, and published all at once, so
// that every Snapshot, for a scrape or the API, shows one instant. It is
// pure: no clock, no I/O, no store; the writer feeds it and stores it.
package fleet
