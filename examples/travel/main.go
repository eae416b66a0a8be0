// Command travel is moat's main example: a travel agency's API protected by
// moat, and a scripted app that plays the whole story against it over
// pinned HTTPS on loopback.
//
//	go run ./examples/travel              # the story; exits 0 only if every step went as expected
//	go run ./examples/travel -serve ADDR  # only the server, for a real client
//
// The story: register, sign in with a password, read a reservation, pay
// (the API asks for an SMS code only now), a second user blocks the SMS
// check with wrong codes, a watch signs in with a PIN, the support desk
// marks a phone stolen (refused at once), an old app version is first
// notified and then blocked, a mandatory web-resource fix is installed,
// an unpinned server is refused, and the operator reads the analytics.
//
// The same story on three instances sharing Redis and PostgreSQL is
// ./instances (its own module, since the drivers stay out of moat's core).
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/moatsec/moat/examples/travel/internal/story"
)

func main() {
	serve := flag.String("serve", "", "run only the server on `ADDR` (for example 127.0.0.1:8443)")
	verbose := flag.Bool("v", false, "log the server's internal errors")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := story.Main(story.Options{Addr: *serve, Logger: logger}, 60*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "\nFAILED:", err)
		os.Exit(1)
	}
}
