// Command instances plays moat's travel story on several API instances
// that share Redis (auth sessions, check state, replay caches, device-cache
// invalidations) and PostgreSQL (clients, devices, version policies, PINs,
// update releases), behind a round-robin balancer: every call of the
// scripted app goes to the next instance.
//
//	go run ./examples/travel/instances -instances 3 -redis 127.0.0.1:6379 -postgres 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//	go run ./examples/travel/instances ... -serve 127.0.0.1:8443   # only the servers, for a real client
//
// It is a module of its own, so that the Redis and PostgreSQL drivers stay
// out of moat's core module. Each run works in a PostgreSQL schema and a
// Redis key prefix of its own (applying the migrations at start) and
// removes them at exit, so runs never see each other's devices.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/moatsec/moat/examples/travel/internal/story"
)

func main() {
	instances := flag.Int("instances", 3, "how many API instances share the backends")
	redisAddr := flag.String("redis", os.Getenv("MOAT_TEST_REDIS_ADDR"), "Redis `ADDR` (host:port); default $MOAT_TEST_REDIS_ADDR")
	pgURL := flag.String("postgres", os.Getenv("MOAT_TEST_POSTGRES_URL"), "PostgreSQL `URL`; default $MOAT_TEST_POSTGRES_URL")
	serve := flag.String("serve", "", "run only the servers, behind a balancer on `ADDR`")
	verbose := flag.Bool("v", false, "log the servers' internal errors")
	flag.Parse()
	if *redisAddr == "" || *pgURL == "" {
		fmt.Fprintln(os.Stderr, "instances: -redis and -postgres are required (or MOAT_TEST_REDIS_ADDR and MOAT_TEST_POSTGRES_URL)")
		flag.Usage()
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := run(*instances, *redisAddr, *pgURL, *serve, logger); err != nil {
		fmt.Fprintln(os.Stderr, "\nFAILED:", err)
		os.Exit(1)
	}
}

func run(n int, redisAddr, pgURL, serve string, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // for connecting and migrating
	defer cancel()
	b, err := openBackends(ctx, redisAddr, pgURL, logger)
	if err != nil {
		return err
	}
	defer b.close()
	fmt.Printf("backends: Redis at %s (key prefix %s), PostgreSQL schema %s (migrations applied)\n", redisAddr, b.prefix, b.schema)
	return story.Main(story.Options{Addr: serve, Instances: n, Backends: b.Backends, Logger: logger}, 90*time.Second)
}
