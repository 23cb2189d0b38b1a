// Package callstate holds what the application tracker needs to pair the
// two ends of a call's parts and to count each event once: the tables of
// connections, channels and clients between their start and their end, and
// the memory of the events counted. State is the contract, with its rules;
// NewMemory is its implementation in this process's memory, and package
// redisstate the one the exporter's replicas share in Redis. Both are held
// to the rules by package statetest.
//
// Everything here is bounded (Limits): each table by its cap and every
// entry by its deadline, the memory of events by its cap per minute of
// event time, and a minute of it by the age an event may have.
package callstate
