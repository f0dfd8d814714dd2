// Package schemas holds the versioned JSON Schemas of every topic's
// messages, the Go types that mirror them, and the validating decoders that
// turn raw Kafka record values into those types.
//
// The JSON Schema documents are the contract with producers and subscribers;
// the Go types follow them. Validation runs the documents themselves (not a
// hand-written copy) so the two cannot drift apart.
package schemas
