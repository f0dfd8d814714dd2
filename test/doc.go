// Package test holds cxstream's end-to-end, crash and load tests and their
// fixtures. The e2e suite (test/e2e) runs the built cxstream binary as
// separate processes against a real Apache Kafka broker (test/kafka) and a
// real redis-server, producing input and reading alerts with kcat.
package test
