package securestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/moatsec/moat/securestore"
)

// A store locked by the user's passcode. Apps use NewDirBackend with a
// directory in their private storage; the memory backend keeps the
// example self-contained.
func Example() {
	ctx := context.Background()
	backend := securestore.NewMemoryBackend()
	s, err := securestore.Create(ctx, backend, securestore.Passcode([]byte("user's passcode")), securestore.Config{})
	if err != nil {
		panic(err)
	}
	if err := s.Put(ctx, "session", []byte("offline token")); err != nil {
		panic(err)
	}

	_, err = securestore.Open(ctx, backend, securestore.Passcode([]byte("a guess")))
	fmt.Println("wrong passcode:", errors.Is(err, securestore.ErrWrongPasscode))

	s, err = securestore.Open(ctx, backend, securestore.Passcode([]byte("user's passcode")))
	if err != nil {
		panic(err)
	}
	v, err := s.Get(ctx, "session")
	fmt.Printf("%s %v\n", v, err)
	// Output:
	// wrong passcode: true
	// offline token <nil>
}

// Documents with search fields, queried without decrypting the others,
// and tracked for sync.
func ExampleCollection_Find() {
	ctx := context.Background()
	s, err := securestore.Create(ctx, securestore.NewMemoryBackend(), securestore.Passcode([]byte("pw")),
		securestore.Config{Argon2: securestore.Argon2Params{Time: 1, MemoryKiB: securestore.MinArgon2MemoryKiB, Threads: 1}})
	if err != nil {
		panic(err)
	}
	trips, err := s.Collection(ctx, "trips", "city", "paid")
	if err != nil {
		panic(err)
	}
	for id, doc := range map[string]string{
		"t1": `{"city":"Lisbon","paid":true}`,
		"t2": `{"city":"Oslo","paid":false}`,
		"t3": `{"city":"lisbon","paid":false}`,
	} {
		if err := trips.Put(ctx, id, json.RawMessage(doc)); err != nil {
			panic(err)
		}
	}
	// (city = Lisbon AND paid = false) OR city = Oslo
	found, err := trips.Find(ctx, securestore.Query{Match: []map[string]any{
		{"city": "Lisbon", "paid": false},
		{"city": "Oslo"},
	}})
	if err != nil {
		panic(err)
	}
	for _, d := range found {
		fmt.Println(d.ID, string(d.JSON))
	}
	dirty, _ := trips.Dirty(ctx)
	fmt.Println("to sync:", len(dirty))
	_ = trips.MarkClean(ctx, dirty...)
	dirty, _ = trips.Dirty(ctx)
	fmt.Println("after sync:", len(dirty))
	// Output:
	// t2 {"city":"Oslo","paid":false}
	// t3 {"city":"lisbon","paid":false}
	// to sync: 3
	// after sync: 0
}

// A server seals TOTP seeds for its database with keys the operator
// supplies, for example in an environment variable made with
// `moat store keygen --id 1`.
func ExampleSealer() {
	ctx := context.Background()
	keys, err := securestore.ParseSealerKeys("1:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=")
	if err != nil {
		panic(err)
	}
	sealer, err := securestore.NewSealer(securestore.SealerConfig{Keys: keys})
	if err != nil {
		panic(err)
	}
	// The associated data ties the sealed seed to its user's row.
	sealed, err := sealer.Seal(ctx, []byte("JBSWY3DPEHPK3PXP"), []byte("totp:alice"))
	if err != nil {
		panic(err)
	}
	seed, err := sealer.Open(ctx, sealed, []byte("totp:alice"))
	fmt.Printf("%s %v\n", seed, err)
	_, err = sealer.Open(ctx, sealed, []byte("totp:mallory"))
	fmt.Println(errors.Is(err, securestore.ErrCorruptRecord))

	// Rotation: a new current key first, the old one kept to open old values.
	rotated, _ := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{securestore.GenerateSealerKey(2), keys[0]}})
	resealed, changed, err := rotated.Reseal(ctx, sealed, []byte("totp:alice"))
	fmt.Println(changed, err, len(resealed) == len(sealed))
	// Output:
	// JBSWY3DPEHPK3PXP <nil>
	// true
	// true <nil> true
}
