package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/moatsec/moat/examples/travel/internal/story"
	"github.com/moatsec/moat/stores/postgres"
	"github.com/moatsec/moat/stores/redis"
)

// backends are a deployment's Redis and PostgreSQL stores, in a key
// prefix and a schema of their own.
type backends struct {
	story.Backends
	prefix, schema string
	redis          *goredis.Client
	pool           *pgxpool.Pool
	invalidator    *redis.Invalidator
	admin          *pgx.Conn // made the schema; drops it at close
}

// openBackends connects to Redis at redisAddr and PostgreSQL at pgURL,
// makes a fresh schema, applies the migrations in it and returns the
// stores.
func openBackends(ctx context.Context, redisAddr, pgURL string, logger *slog.Logger) (b *backends, err error) {
	tag := make([]byte, 6)
	_, _ = rand.Read(tag)
	b = &backends{prefix: "moat-travel-" + hex.EncodeToString(tag) + ":", schema: "moat_travel_" + hex.EncodeToString(tag)}
	defer func() {
		if err != nil {
			b.close()
		}
	}()

	b.redis = goredis.NewClient(&goredis.Options{Addr: redisAddr, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	if err := b.redis.Ping(ctx).Err(); err != nil {
		return b, fmt.Errorf("redis at %s does not answer: %w", redisAddr, err)
	}
	kv, err := redis.New(b.redis, redis.Config{Prefix: b.prefix})
	if err != nil {
		return b, err
	}
	if b.invalidator, err = redis.NewInvalidator(ctx, b.redis, redis.InvalidatorConfig{Prefix: b.prefix, Logger: logger}); err != nil {
		return b, err
	}

	if b.admin, err = pgx.Connect(ctx, pgURL); err != nil {
		return b, fmt.Errorf("postgresql does not answer: %w", err)
	}
	if _, err := b.admin.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{b.schema}.Sanitize()); err != nil {
		return b, fmt.Errorf("creating schema %s: %w", b.schema, err)
	}
	cfg, err := pgxpool.ParseConfig(pgURL)
	if err != nil {
		return b, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = b.schema
	if b.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return b, err
	}
	if err := postgres.Migrate(ctx, b.pool); err != nil {
		return b, err
	}
	pg, err := postgres.New(ctx, b.pool, postgres.Config{})
	if err != nil {
		return b, err
	}
	b.Backends = story.Backends{
		KV: kv, Invalidator: b.invalidator,
		Clients: pg.Clients(), Devices: pg.Devices(), PINs: pg.PINs(), Updates: pg.Updates(),
	}
	return b, nil
}

// close removes the prefix's keys and the schema, and disconnects.
func (b *backends) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if b.invalidator != nil {
		_ = b.invalidator.Close()
	}
	if b.pool != nil {
		b.pool.Close()
	}
	if b.admin != nil {
		_, _ = b.admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{b.schema}.Sanitize()+" CASCADE")
		_ = b.admin.Close(ctx)
	}
	if b.redis != nil {
		iter := b.redis.Scan(ctx, 0, b.prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			_ = b.redis.Del(ctx, keys[:n]...).Err()
			keys = keys[n:]
		}
		_ = b.redis.Close()
	}
}
