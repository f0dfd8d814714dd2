module github.com/cxstream/cxstream

go 1.26.8

require (
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3
	golang.org/x/text v0.42.0
)

require (
	github.com/cdipaolo/goml v0.0.0-20220715001353-00e0c845ae1c // indirect
	github.com/cdipaolo/sentiment v0.0.0-20200617002423-c697f64e7f10 // indirect
	github.com/jonreiter/govader v0.0.0-20250429093935-f6505c8d03cc // indirect
	gonum.org/v1/gonum v0.8.2 // indirect
)
