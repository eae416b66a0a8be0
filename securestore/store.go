package securestore

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// KeyProvider wraps and unwraps small secrets with a key it keeps to
// itself: an OS keystore, a KMS or an HSM. A store opened with a provider
// keeps its key-encryption key wrapped by it. [*Sealer] is a KeyProvider
// whose key the operator holds.
//
// Open must fail when sealed or associatedData were altered.
type KeyProvider interface {
	Seal(ctx context.Context, plaintext, associatedData []byte) ([]byte, error)
	Open(ctx context.Context, sealed, associatedData []byte) ([]byte, error)
}

// KeySource is what unlocks a store: a passcode or a [KeyProvider]. Make
// one with [Passcode] or [FromProvider]; the zero value unlocks nothing
// and is refused with [ErrNoKeySource].
type KeySource struct {
	passcode []byte
	provider KeyProvider
}

// Passcode returns a key source that derives the key-encryption key from
// passcode with Argon2id. The slice is not kept after the call it is
// passed to returns.
func Passcode(passcode []byte) KeySource { return KeySource{passcode: passcode} }

// FromProvider returns a key source whose random key-encryption key is
// wrapped by p.
func FromProvider(p KeyProvider) KeySource { return KeySource{provider: p} }

func (k KeySource) check() error {
	switch {
	case k.provider != nil:
		return nil
	case k.passcode == nil:
		return ErrNoKeySource
	case len(k.passcode) == 0:
		return ErrEmptyPasscode
	}
	return nil
}

// Config is the choice of algorithms for [Create]. The zero value is the
// recommended configuration.
type Config struct {
	// AEAD seals records. Zero means AES256GCM.
	AEAD AEAD
	// Argon2 is the passcode's key-derivation cost; zero fields take
	// the defaults (DefaultArgon2Time and so on). Stores unlocked by a
	// KeyProvider ignore it.
	Argon2 Argon2Params
}

// MaxValueSize is the largest value or document, 64 MiB.
const MaxValueSize = 64 << 20

// kekAD is the additional data under which a provider wraps a store's KEK.
var kekAD = []byte("moat/securestore kek v1")

// Store is an encrypted key-value store with collections of JSON
// documents. It is safe for concurrent use by many goroutines of one
// process. See the package doc for its formats and guarantees.
type Store struct {
	b Backend

	// ring is the current keyring; replaced, never mutated.
	ring atomic.Pointer[ring]
	// writeMu is held shared by every record write and exclusively while
	// the keyring changes, so no write in flight uses a retired key.
	writeMu sync.RWMutex
	// adminMu serializes header changes (rotation, re-encryption, key
	// source changes).
	adminMu sync.Mutex
	// hdr and kek are guarded by adminMu.
	hdr *header
	kek []byte

	// stripes serialize read-modify-write cycles per record name.
	stripes [64]sync.Mutex
	seed    maphash.Seed
	closed  atomic.Bool
}

// ring is an unsealed keyring, ready for use.
type ring struct {
	data    *keyringData
	aeads   map[uint32]cipher.AEAD
	current cipher.AEAD
	names   *namer
}

func newRing(k *keyringData) (*ring, error) {
	r := &ring{data: k, aeads: make(map[uint32]cipher.AEAD, len(k.keys))}
	for _, dk := range k.keys {
		c, err := newCipher(k.aead, dk.key)
		if err != nil {
			return nil, err
		}
		r.aeads[dk.id] = c
	}
	r.current = r.aeads[k.current]
	var err error
	r.names, err = newNamer(k.nameKey, k.indexKey)
	return r, err
}

func randomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails
	return k
}

// Create makes a new store in an empty backend, locked by ks.
func Create(ctx context.Context, b Backend, ks KeySource, cfg Config) (*Store, error) {
	if err := ks.check(); err != nil {
		return nil, err
	}
	a := cfg.AEAD.orDefault()
	if a.nonceSize() == 0 {
		return nil, fmt.Errorf("%w: aead %d", ErrUnknownAlgorithm, uint8(cfg.AEAD))
	}
	params := cfg.Argon2.withDefaults()
	if err := params.validate(); err != nil {
		return nil, err
	}
	if _, err := b.Get(ctx, headerName); err == nil {
		return nil, ErrExists
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	kd := &keyringData{
		aead:     a,
		nameKey:  randomKey(),
		indexKey: randomKey(),
		current:  1,
		keys:     []dataKey{{id: 1, key: randomKey()}},
	}
	hdr, kek, err := newHeader(ctx, ks, params)
	if err != nil {
		return nil, err
	}
	raw, err := sealHeader(hdr, kek, kd)
	if err != nil {
		return nil, err
	}
	if err := b.Put(ctx, headerName, raw); err != nil {
		return nil, err
	}
	return newStore(b, raw, kek)
}

// newHeader makes the key-source part of a header and its KEK.
func newHeader(ctx context.Context, ks KeySource, params Argon2Params) (*header, []byte, error) {
	if ks.provider != nil {
		kek := randomKey()
		wrapped, err := ks.provider.Seal(ctx, kek, kekAD)
		if err != nil {
			return nil, nil, fmt.Errorf("moat/securestore: key provider: %w", err)
		}
		return &header{source: sourceProvider, wrappedKEK: wrapped}, kek, nil
	}
	salt := make([]byte, saltSize)
	_, _ = rand.Read(salt)
	kek, err := deriveKEK(ctx, ks.passcode, salt, params)
	if err != nil {
		return nil, nil, err
	}
	return &header{source: sourcePasscode, argon2: params, salt: salt}, kek, nil
}

// sealHeader encodes hdr with kd sealed under kek.
func sealHeader(hdr *header, kek []byte, kd *keyringData) ([]byte, error) {
	c, err := newCipher(AES256GCM, kek)
	if err != nil {
		return nil, err
	}
	return marshalHeader(hdr, func(ad []byte) ([]byte, error) {
		return sealEnvelope(AES256GCM, c, kekEnvelopeKey, nil, kd.marshal(), ad)
	})
}

// unlock returns the KEK that ks gives for hdr. It does not check that the
// KEK is right.
func unlock(ctx context.Context, hdr *header, ks KeySource) ([]byte, error) {
	if err := ks.check(); err != nil {
		return nil, err
	}
	switch {
	case hdr.source == sourcePasscode && ks.provider == nil:
		return deriveKEK(ctx, ks.passcode, hdr.salt, hdr.argon2)
	case hdr.source == sourceProvider && ks.provider != nil:
		kek, err := ks.provider.Open(ctx, hdr.wrappedKEK, kekAD)
		if errors.Is(err, ErrCorruptRecord) { // a Sealer with other keys
			return nil, ErrWrongPasscode
		}
		if err != nil {
			return nil, fmt.Errorf("moat/securestore: key provider: %w", err)
		}
		if len(kek) != 32 {
			return nil, ErrWrongPasscode
		}
		return kek, nil
	}
	return nil, ErrWrongPasscode
}

// openKeyring decrypts and parses hdr's keyring with kek.
func openKeyring(hdr *header, kek []byte) (*keyringData, error) {
	e, err := parseEnvelope(hdr.keyring)
	if err != nil || e.aead != AES256GCM || e.keyID != kekEnvelopeKey {
		return nil, fmt.Errorf("%w: keyring envelope", ErrCorruptHeader)
	}
	c, err := newCipher(AES256GCM, kek)
	if err != nil {
		return nil, err
	}
	plain, err := openEnvelope(e, nil, c, hdr.keyringAD)
	if err != nil {
		return nil, ErrWrongPasscode
	}
	return parseKeyring(plain)
}

// Open opens the store in b with ks. A wrong passcode, or a provider that
// unwraps to a wrong key, is [ErrWrongPasscode]; a provider that fails
// (a KMS outage) is reported with its own error; a damaged header is
// [ErrCorruptHeader]; Argon2id parameters out of bounds are
// [ErrUnsafeParameters], refused before the derivation.
func Open(ctx context.Context, b Backend, ks KeySource) (*Store, error) {
	if err := ks.check(); err != nil {
		return nil, err
	}
	raw, err := b.Get(ctx, headerName)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNoStore
	}
	if err != nil {
		return nil, err
	}
	hdr, err := parseHeader(raw)
	if err != nil {
		return nil, err
	}
	kek, err := unlock(ctx, hdr, ks)
	if err != nil {
		return nil, err
	}
	return newStore(b, raw, kek)
}

func newStore(b Backend, rawHeader, kek []byte) (*Store, error) {
	hdr, err := parseHeader(rawHeader)
	if err != nil {
		return nil, err
	}
	kd, err := openKeyring(hdr, kek)
	if err != nil {
		return nil, err
	}
	r, err := newRing(kd)
	if err != nil {
		return nil, err
	}
	s := &Store{b: b, hdr: hdr, kek: kek, seed: maphash.MakeSeed()}
	s.ring.Store(r)
	return s, nil
}

// KeyInfo describes a store's keys, not their values.
type KeyInfo struct {
	// AEAD seals the records.
	AEAD AEAD
	// Current is the id of the data key new records are sealed with.
	Current uint32
	// Keys are the ids of every data key the store holds, ascending.
	Keys []uint32
	// Passcode reports a passcode store (false: a key-provider store).
	Passcode bool
	// Argon2 is the passcode's key-derivation cost (zero for providers).
	Argon2 Argon2Params
}

// KeyInfo returns the store's key ids and algorithms.
func (s *Store) KeyInfo() KeyInfo {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	d := s.ring.Load().data
	ki := KeyInfo{AEAD: d.aead, Current: d.current, Passcode: s.hdr.source == sourcePasscode, Argon2: s.hdr.argon2}
	for _, k := range d.keys {
		ki.Keys = append(ki.Keys, k.id)
	}
	slices.Sort(ki.Keys)
	return ki
}

// live returns the current keyring, or ErrClosed.
func (s *Store) live(ctx context.Context) (*ring, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.ring.Load(), nil
}

func (s *Store) stripe(name string) *sync.Mutex {
	return &s.stripes[maphash.String(s.seed, name)%uint64(len(s.stripes))]
}

// kvName is the backend name of a key-value record.
func kvName(r *ring, key string) string { return r.names.seal("k.", kindKV, "", key) }

// getRecord reads and decrypts the record at name, returning its clear
// section and plaintext. A record under a key that the keyring it was
// checked against lacks is read once more: Reencrypt may have moved it to
// the current key and retired the old one in between.
func (s *Store) getRecord(ctx context.Context, name string) (clear, plain []byte, err error) {
	for try := 0; ; try++ {
		raw, err := s.b.Get(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		clear, plain, err = s.openRecord(raw, name)
		if errors.Is(err, errUnknownDataKey) && try == 0 {
			continue
		}
		return clear, plain, err
	}
}

// errUnknownDataKey marks a record sealed under a key the keyring lacks.
var errUnknownDataKey = fmt.Errorf("%w: unknown data key", ErrCorruptRecord)

// openRecord authenticates and decrypts a record read from name.
func (s *Store) openRecord(raw []byte, name string) (clear, plain []byte, err error) {
	e, err := parseEnvelope(raw)
	if err != nil {
		return nil, nil, err
	}
	r := s.ring.Load()
	c, ok := r.aeads[e.keyID]
	if !ok || e.aead != r.data.aead {
		return nil, nil, errUnknownDataKey
	}
	plain, err = openEnvelope(e, nil, c, name)
	if err != nil {
		return nil, nil, err
	}
	if plain == nil {
		plain = []byte{}
	}
	return e.clear, plain, nil
}

// putRecord seals plain (with an authenticated clear section) and writes
// it at name. Callers hold s.writeMu shared.
func (s *Store) putRecord(ctx context.Context, r *ring, name string, clear, plain []byte) error {
	rec, err := sealEnvelope(r.data.aead, r.current, r.data.current, clear, plain, name)
	if err != nil {
		return err
	}
	return s.b.Put(ctx, name, rec)
}

// write runs fn with the keyring that new records must use, holding what
// keeps that keyring current and serializes writers of name.
func (s *Store) write(ctx context.Context, name func(*ring) (string, error), fn func(r *ring, name string) error) error {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	r, err := s.live(ctx)
	if err != nil {
		return err
	}
	n, err := name(r)
	if err != nil {
		return err
	}
	mu := s.stripe(n)
	mu.Lock()
	defer mu.Unlock()
	return fn(r, n)
}

// Get returns the value stored at key, or ErrNotFound. A damaged record is
// [ErrCorruptRecord].
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	r, err := s.live(ctx)
	if err != nil {
		return nil, err
	}
	if !validKey(key) {
		return nil, ErrInvalidKey
	}
	_, plain, err := s.getRecord(ctx, kvName(r, key))
	return plain, err
}

// Put stores value at key, sealed under the current data key with a fresh
// nonce. The write is as atomic and durable as the backend's Put.
func (s *Store) Put(ctx context.Context, key string, value []byte) error {
	if len(value) > MaxValueSize {
		return ErrTooLarge
	}
	return s.write(ctx, func(r *ring) (string, error) {
		if !validKey(key) {
			return "", ErrInvalidKey
		}
		return kvName(r, key), nil
	}, func(r *ring, name string) error {
		return s.putRecord(ctx, r, name, nil, value)
	})
}

// Delete removes key. Deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.write(ctx, func(r *ring) (string, error) {
		if !validKey(key) {
			return "", ErrInvalidKey
		}
		return kvName(r, key), nil
	}, func(_ *ring, name string) error {
		return s.b.Delete(ctx, name)
	})
}

// List returns the keys that start with prefix, in ascending byte order.
// Keys are decrypted from the backend's names; records are not read.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	r, err := s.live(ctx)
	if err != nil {
		return nil, err
	}
	names, err := s.b.List(ctx, "k.")
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, n := range names {
		k, err := r.names.open(kindKV, "", strings.TrimPrefix(n, "k."))
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// ChangePasscode re-wraps the store's keys under a new passcode, with the
// store's Argon2id parameters and a fresh salt. Only the header is
// rewritten: the cost does not depend on how many records the store
// holds. The old passcode must be given again.
func (s *Store) ChangePasscode(ctx context.Context, old, next []byte) error {
	if len(next) == 0 {
		return ErrEmptyPasscode
	}
	return s.ChangeKeySource(ctx, Passcode(old), Passcode(next))
}

// ChangeKeySource re-wraps the store's keys under next, after checking
// that current unlocks the store: a new passcode, a new provider, or a move
// between the two. Only the header is rewritten. A passcode keeps the
// store's Argon2id parameters; a move from a provider to a passcode takes
// the default Argon2id parameters.
func (s *Store) ChangeKeySource(ctx context.Context, current, next KeySource) error {
	if err := next.check(); err != nil {
		return err
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if _, err := s.live(ctx); err != nil {
		return err
	}
	kek, err := unlock(ctx, s.hdr, current)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(kek, s.kek) != 1 {
		return ErrWrongPasscode
	}
	params := s.hdr.argon2
	if s.hdr.source != sourcePasscode {
		params = Argon2Params{}.withDefaults()
	}
	hdr, newKEK, err := newHeader(ctx, next, params)
	if err != nil {
		return err
	}
	return s.writeHeader(ctx, hdr, newKEK, s.ring.Load().data)
}

// writeHeader seals kd under kek into hdr, writes it, and makes it the
// store's. Callers hold adminMu.
func (s *Store) writeHeader(ctx context.Context, hdr *header, kek []byte, kd *keyringData) error {
	raw, err := sealHeader(hdr, kek, kd)
	if err != nil {
		return err
	}
	if err := s.b.Put(ctx, headerName, raw); err != nil {
		return err
	}
	parsed, err := parseHeader(raw)
	if err != nil {
		return err
	}
	s.hdr, s.kek = parsed, kek
	return nil
}

// RotateKey adds a new random data key and makes it current: every record
// written from now on is sealed with it, and records sealed with older
// keys stay readable. [Store.Reencrypt] moves them to the new key. It
// returns the new key's id.
func (s *Store) RotateKey(ctx context.Context) (uint32, error) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if _, err := s.live(ctx); err != nil {
		return 0, err
	}
	old := s.ring.Load().data
	if len(old.keys) >= maxDataKeys {
		return 0, fmt.Errorf("moat/securestore: %d data keys: run Reencrypt to retire old ones", len(old.keys))
	}
	next := *old
	next.keys = slices.Clone(old.keys)
	for _, k := range old.keys {
		next.current = max(next.current, k.id)
	}
	next.current++
	next.keys = append(next.keys, dataKey{id: next.current, key: randomKey()})
	return next.current, s.replaceKeyring(ctx, &next)
}

// replaceKeyring writes kd to the header and makes it current once no
// write with the previous keyring is in flight. Callers hold adminMu.
func (s *Store) replaceKeyring(ctx context.Context, kd *keyringData) error {
	r, err := newRing(kd)
	if err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writeHeader(ctx, s.hdr, s.kek, kd); err != nil {
		return err
	}
	s.ring.Store(r)
	return nil
}

// Reencrypt re-seals every record that is not under the current data key,
// then retires the other keys from the header. It returns how many records
// it re-sealed. It is safe to run while the store is in use, and to run
// again after an interruption: keys are retired only after a complete
// pass.
func (s *Store) Reencrypt(ctx context.Context) (int, error) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if _, err := s.live(ctx); err != nil {
		return 0, err
	}
	// Every record sealed with an old key was written before the key
	// became current (RotateKey waits for writes in flight), so it is in
	// this listing unless it has since been replaced or deleted.
	names, err := s.b.List(ctx, "")
	if err != nil {
		return 0, err
	}
	moved := 0
	for _, name := range names {
		if name == headerName {
			continue
		}
		did, err := s.reseal(ctx, name)
		if err != nil {
			return moved, fmt.Errorf("moat/securestore: re-encrypt: %w", err)
		}
		if did {
			moved++
		}
	}
	old := s.ring.Load().data
	if len(old.keys) == 1 {
		return moved, nil
	}
	next := *old
	next.keys = nil
	for _, k := range old.keys {
		if k.id == old.current {
			next.keys = []dataKey{k}
		}
	}
	return moved, s.replaceKeyring(ctx, &next)
}

// reseal moves one record to the current key if it is not there yet.
func (s *Store) reseal(ctx context.Context, name string) (bool, error) {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	mu := s.stripe(name)
	mu.Lock()
	defer mu.Unlock()
	raw, err := s.b.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return false, nil // deleted meanwhile
	}
	if err != nil {
		return false, err
	}
	r := s.ring.Load()
	if e, err := parseEnvelope(raw); err == nil && e.keyID == r.data.current {
		return false, nil
	}
	clear, plain, err := s.openRecord(raw, name)
	if err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	return true, s.putRecord(ctx, r, name, bytes.Clone(clear), plain)
}

// Close forgets the store's keys; every later call returns ErrClosed. It
// waits for writes in flight. Key bytes are overwritten, but copies that
// the cipher implementations expanded from them may stay in memory until
// collected.
func (s *Store) Close() error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	clear(s.kek)
	d := s.ring.Load().data
	for _, k := range d.keys {
		clear(k.key)
	}
	clear(d.nameKey)
	clear(d.indexKey)
	return nil
}
