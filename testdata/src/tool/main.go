// Command tool stands in for a developer tool installed with
// `go install example.com/tool@v0.3.0` (published in the local GOPROXY).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintf(os.Stdout, "tool v0.3.0 %v\n", os.Args[1:])
}
