# The one test command (README and .ci/run both call it): formatting, vet,
# every test with the race detector (unit, integration against a real
# redis-server, end-to-end against a real Kafka broker), then a short fuzz
# of the decoders.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# An execution count, not a duration: a duration races Go's fuzz
# coordinator at its deadline on a loaded machine and fails with "context
# deadline exceeded" and no crasher (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 100000x

.PHONY: test check deps fuzz demo build models models-check

# The browser test's screenshots go to test-output/screenshots.
test: check deps
	mkdir -p test-output/screenshots
	CI=$${CI:-true} CX_SCREENSHOT_DIR=$(CURDIR)/test-output/screenshots go test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz

check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...

fuzz:
	go test -run='^$$' -fuzz=FuzzDecodeClick -fuzztime=$(FUZZTIME) ./schemas
	go test -run='^$$' -fuzz=FuzzDecodeChat -fuzztime=$(FUZZTIME) ./schemas
	go test -run='^$$' -fuzz=FuzzFastPathAgreesWithSchema -fuzztime=$(FUZZTIME) ./schemas
	go test -run='^$$' -fuzz=FuzzDecodeAlert -fuzztime=$(FUZZTIME) ./schemas
	go test -run='^$$' -fuzz=FuzzEventTime -fuzztime=$(FUZZTIME) ./schemas
	go test -run='^$$' -fuzz=FuzzReaders -fuzztime=$(FUZZTIME) ./internal/ingest
	go test -run='^$$' -fuzz=FuzzDecodeDoc -fuzztime=$(FUZZTIME) ./internal/pipeline

# Tests start their own redis-server and Kafka broker on free ports; this
# only makes sure the programs are installed (Debian/Ubuntu): redis-server,
# kcat (the independent Kafka client of the e2e tests), Java 17 and Maven
# (the broker's jars come from Maven Central, see test/kafka).
deps:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v kcat >/dev/null 2>&1 || missing="$$missing kcat"; \
	command -v java >/dev/null 2>&1 || missing="$$missing openjdk-17-jre-headless"; \
	command -v mvn >/dev/null 2>&1 || missing="$$missing maven"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing (apt-get)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi
	@for tool in redis-server kcat java mvn chromium; do \
		command -v $$tool >/dev/null 2>&1 || { echo "FATAL: $$tool is not installed and could not be installed" >&2; exit 1; }; \
	done

demo:
	go run ./cmd/cxstream demo

build:
	CGO_ENABLED=0 go build -o bin/cxstream ./cmd/cxstream

# The embedded sentiment models (processors/sentiment/models/*.bin and their
# model cards), retrained from ../shared/data/sentiment-train and the team's
# own labelled messages (the held-out halves are never trained on). One core,
# deterministic: the same data gives the same weights (about a minute).
SENTIMENT_DATA ?= ../shared/data/sentiment-train
MODELS := processors/sentiment/models
models:
	CGO_ENABLED=0 go build -o bin/cxstream ./cmd/cxstream
	mkdir -p $(MODELS)
	GOMAXPROCS=1 nice ./bin/cxstream sentiment train --lang zh -o $(MODELS)/zh.bin \
		$(SENTIMENT_DATA)/zh/*.csv test/testdata/support_chats_zh.tsv@5
	GOMAXPROCS=1 nice ./bin/cxstream sentiment train --lang en -o $(MODELS)/en.bin \
		--val $(SENTIMENT_DATA)/en/semeval2017-task4a/SemEval2017-task4-test.subtask-A.english.txt \
		$(SENTIMENT_DATA)/en/semeval2017-task4a/twitter-201*.tsv $(SENTIMENT_DATA)/en/goemotions/*.tsv \
		test/testdata/support_chats.tsv@5 test/testdata/support_chats_en_extra.tsv@5

# Retrains into a scratch directory and compares byte for byte with the
# committed models: the embedded models are what `make models` makes.
models-check:
	rm -rf bin/models-check
	$(MAKE) --no-print-directory models MODELS=bin/models-check
	cmp bin/models-check/zh.bin processors/sentiment/models/zh.bin
	cmp bin/models-check/en.bin processors/sentiment/models/en.bin
	@echo "retrained models are identical to the committed ones"
