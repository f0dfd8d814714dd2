// Command cxstream is the real-time customer-interaction stream processor.
// See `cxstream --help`.
package main

import (
	"os"

	"github.com/cxstream/cxstream/internal/cli"
)

func main() { os.Exit(cli.Execute()) }
