// The program the hist fixture "builds" (with a stub go command; see Dockerfile).
package main

import "fmt"

func main() { fmt.Println("hello from the fixture app") }
