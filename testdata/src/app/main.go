// Command app is the fixture application built in many variants by testdata/build.sh.
//
// It deliberately links what the image rules look for:
//   - crypto/tls and net/http (crypto/x509: needs a CA bundle at run time, rule FS010),
//   - time.LoadLocation without importing time/tzdata (needs /usr/share/zoneinfo, FS011),
//   - os/user, so that CGO_ENABLED=1 builds really link libc (getpwuid_r),
//   - main.version, stamped with -ldflags=-X in the release variants.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/user"
	"time"

	"example.com/greet"
	"example.com/localmod"
)

var version = "(unset)"

func main() {
	fmt.Printf("app %s\n", version)
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		return
	}
	fmt.Println(greet.Hello("container"), "/", localmod.Banner())

	if u, err := user.Current(); err == nil {
		fmt.Printf("user: %s (uid %s)\n", u.Username, u.Uid)
	} else {
		fmt.Printf("user: unknown (%v)\n", err)
	}

	if loc, err := time.LoadLocation("Europe/Berlin"); err == nil {
		fmt.Printf("tz: %s\n", time.Unix(0, 0).In(loc).Format(time.RFC3339))
	} else {
		fmt.Printf("tz: %v\n", err)
	}

	if pool, err := x509.SystemCertPool(); err == nil && pool != nil {
		fmt.Println("certs: system pool loaded")
	} else {
		fmt.Printf("certs: %v\n", err)
	}

	if len(os.Args) > 1 && os.Args[1] == "--serve" {
		srv := &http.Server{
			Addr:      ":8443",
			TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12},
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintln(w, greet.Hello(r.URL.Path))
			}),
		}
		fmt.Fprintln(os.Stderr, srv.ListenAndServeTLS("/etc/app/tls.crt", "/etc/app/tls.key"))
		os.Exit(1)
	}
}
