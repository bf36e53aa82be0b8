// Package greet is published as example.com/greet v1.2.0 through the local file:// GOPROXY
// that testdata/build.sh generates, so binaries get a real "dep ... h1:" build-info line.
package greet

import "fmt"

// Hello returns a greeting for name.
func Hello(name string) string {
	return fmt.Sprintf("hello, %s", name)
}
