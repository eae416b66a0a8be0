package postgres_test

import (
	"context"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/stores/postgres"
	"github.com/moatsec/moat/update"
)

// Example connects, migrates at startup and hands the stores to moat's
// packages. (It needs a database, so go test only compiles it.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	// Several instances may run this at once: one migrates, the others
	// wait and find nothing to do.
	if err := postgres.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	stores, err := postgres.New(ctx, pool, postgres.Config{})
	if err != nil {
		log.Fatal(err) // ErrSchemaTooNew: this binary is older than the database
	}

	authCfg := auth.Config{
		Store:   stores.KV(),      // sessions, codes, nonces, check state
		Clients: stores.Clients(), // registered clients
		// ...issuer, keys, checks...
	}
	deviceCfg := device.Config{Store: stores.Devices()}
	updateCfg := update.ServerConfig{Store: stores.Updates()}
	_, _, _ = authCfg, deviceCfg, updateCfg
}
