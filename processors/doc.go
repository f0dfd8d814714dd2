// Package processors is the home of cxstream's stateful stream logic. Each
// subpackage is pure: it takes a user's state and one event (or the current
// time, for timers) and returns the new state and the alerts or transitions
// that follow. None of them does I/O; internal/pipeline loads and stores the
// state and produces what they return.
//
//   - funnel: conversion-funnel progress, windows and abandonment
//   - sentiment: chat message scoring, rolling sentiment, negative-chat alerts
//   - churn: churn-risk features, a transparent logistic score, churn alerts
//   - segment: every customer's segment by ordered rules over their
//     features, in event time; segment changes
//
// Each implements the one processor contract of this package (Processor,
// and Timed for those with event-time timers) through its Keyed type; the
// processors read each other through Facts only. internal/runner registers
// them (runner.Processors) and internal/pipeline runs them.
package processors
