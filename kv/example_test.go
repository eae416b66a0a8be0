package kv_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moatsec/moat/kv"
)

// A single-use nonce: the first Consume gets it, every later one misses.
func ExampleStore_Consume() {
	ctx := context.Background()
	store := kv.NewMemory(kv.MemoryConfig{})
	if _, err := store.Set(ctx, "nonce:abc", []byte("issued"), 5*time.Minute); err != nil {
		panic(err)
	}
	_, err := store.Consume(ctx, "nonce:abc")
	fmt.Println("first use:", err)
	_, err = store.Consume(ctx, "nonce:abc")
	fmt.Println("replay refused:", errors.Is(err, kv.ErrNotFound))
	// Output:
	// first use: <nil>
	// replay refused: true
}
