// Package localmod is published as example.com/localmod v0.1.0 in the local GOPROXY; some
// fixture variants replace it with the local directory ../localmod (a "=>" build-info line).
package localmod

// Banner returns a short banner.
func Banner() string {
	return "localmod v0.1.0"
}
