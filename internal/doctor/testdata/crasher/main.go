// Command crasher logs a line and exits 3: the image of a crash-looping
// container for the doctor's real-engine DKR02 test.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "crasher: cannot connect to mongo, giving up")
	os.Exit(3)
}
