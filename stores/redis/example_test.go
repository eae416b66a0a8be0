package redis_test

import (
	"context"
	"errors"
	"log"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/kv"
	moatredis "github.com/moatsec/moat/stores/redis"
)

// Several instances of one application share moat's state through one
// Redis: each builds the same Store and Invalidator, with the same prefix.
// (This example needs a Redis server, so it has no output to check.)
func Example() {
	ctx := context.Background()
	client := goredis.NewClient(&goredis.Options{
		Addr:                  "127.0.0.1:6379",
		ContextTimeoutEnabled: true, // request deadlines bound Redis calls
	})
	defer client.Close()

	store, err := moatredis.New(client, moatredis.Config{Prefix: "travel:moat:"})
	if err != nil {
		log.Fatal(err)
	}
	inv, err := moatredis.NewInvalidator(ctx, client, moatredis.InvalidatorConfig{Prefix: "travel:moat:"})
	if err != nil {
		log.Fatal(err) // Redis is unreachable
	}
	defer inv.Close()

	// A device marked stolen through any instance is refused by all.
	control, err := device.New(device.Config{
		Store:       device.NewMemory(device.MemoryConfig{}), // a shared (PostgreSQL) store in production
		KV:          store,
		Invalidator: inv,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer control.Close()
}

// A single-use code: of all the instances that race to redeem it, exactly
// one gets it.
func ExampleStore_Consume() {
	ctx := context.Background()
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	store, err := moatredis.New(client, moatredis.Config{Prefix: "travel:moat:"})
	if err != nil {
		log.Fatal(err)
	}

	if _, err := store.Set(ctx, "code:3f9a", []byte("alice"), time.Minute); err != nil {
		log.Fatal(err) // Redis down: refuse (503)
	}
	it, err := store.Consume(ctx, "code:3f9a")
	switch {
	case errors.Is(err, kv.ErrNotFound):
		log.Print("already used or expired")
	case err != nil:
		log.Print("store unavailable: refuse with 503")
	default:
		log.Printf("redeemed by %s", it.Value)
	}
}
