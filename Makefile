# The one test command (README and .ci/run both call it): formatting, vet,
# and every test, with the race detector, against a real redis-server.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test check redis-server demo build

test: check redis-server
	CI=$${CI:-true} go test -race -count=1 ./...

check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...

# Integration tests start their own redis-server on a free port; this only
# makes sure the binary is installed (Debian/Ubuntu).
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server (apt-get)"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@command -v redis-server >/dev/null 2>&1 || { echo "redis-server is not installed and could not be installed" >&2; exit 1; }

demo:
	go run ./cmd/cxstream demo

build:
	CGO_ENABLED=0 go build -o bin/cxstream ./cmd/cxstream
