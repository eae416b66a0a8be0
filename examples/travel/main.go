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
// marks a phone stolen (refused at once), and an old app version is first
// notified and then blocked.
package main

import (
	"context"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/moatsec/moat/analytics"
	"github.com/moatsec/moat/stepup"
)

func main() {
	serve := flag.String("serve", "", "run only the server on `ADDR` (for example 127.0.0.1:8443)")
	verbose := flag.Bool("v", false, "log the server's internal errors")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if *serve != "" {
		if err := serveOnly(*serve, logger); err != nil {
			fmt.Fprintln(os.Stderr, "travel:", err)
			os.Exit(1)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := runStory(ctx, os.Stdout, storyOptions{logger: logger})
	if srv != nil {
		srv.close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "\nFAILED:", err)
		os.Exit(1)
	}
}

// storyOptions are hooks for tests.
type storyOptions struct {
	logger *slog.Logger
	// sink receives every analytics event.
	sink analytics.Sink
	// secret is told every secret the story's HTTP exchanges carry
	// (tokens, proofs, codes, sessions), so tests can search for them.
	secret func(string)
}

// runStory starts a server on a free loopback port and plays the story
// against it. The server is left running for the caller to inspect and
// close (srv is nil when it could not start).
func runStory(ctx context.Context, out io.Writer, opts storyOptions) (srv *travelServer, err error) {
	c, err := newCerts()
	if err != nil {
		return nil, err
	}
	srv, err = startServer(serverOptions{addr: "127.0.0.1:0", certs: c, logger: opts.logger, sink: opts.sink})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "moat-travel-")
	if err != nil {
		return srv, err
	}
	defer os.RemoveAll(dir)
	st, err := newStory(srv, c, out, dir, opts.secret)
	if err != nil {
		return srv, err
	}
	defer st.close()
	return srv, st.run(ctx)
}

func serveOnly(addr string, logger *slog.Logger) error {
	c, err := newCerts()
	if err != nil {
		return err
	}
	srv, err := startServer(serverOptions{addr: addr, certs: c, logger: logger, onSMS: func(m stepup.Message) {
		fmt.Printf("  SMS to %s for %s: %s (the development outbox prints it; a real server sends it)\n", m.To, m.User, m.Code)
	}})
	if err != nil {
		return err
	}
	defer srv.close()
	caFile := filepath.Join(os.TempDir(), "moat-travel-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.ca.Raw}), 0o644); err != nil {
		return err
	}
	fmt.Printf("travel API at %s\n", srv.issuer)
	fmt.Printf("  metadata:      %s/.well-known/oauth-authorization-server\n", srv.issuer)
	fmt.Printf("  trust this CA: %s\n", caFile)
	fmt.Printf("  operator API:  %s%s/devices (Authorization: Bearer %s)\n", srv.issuer, operatorPath, srv.operatorToken)
	fmt.Printf("  dashboard:     https://operator:%s@%s/moat/analytics/\n", srv.operatorToken, strings.TrimPrefix(srv.issuer, "https://"))
	fmt.Printf("  users: alice / %q, bob / %q; SMS codes are printed below\n", users[0].password, users[1].password)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
	return nil
}
