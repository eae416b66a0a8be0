package attest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"
)

// KeyRecord is an attested App Attest key.
type KeyRecord struct {
	// KeyID is the App Attest key id (SHA-256 of the public key point).
	KeyID []byte
	// PublicKey is the key, PKIX DER.
	PublicKey []byte
	// Counter is the highest assertion counter accepted so far (0 right
	// after attestation).
	Counter uint32
	// Receipt is the App Attest receipt from the attestation, for
	// fraud-metric requests to Apple.
	Receipt []byte
	// AppID is the attested app id (TEAMID.BUNDLEID).
	AppID string
	// Environment is the attestation's environment.
	Environment Environment
	// KeyThumbprint is the RFC 7638 thumbprint of the client key the
	// attestation was bound to, "" when none.
	KeyThumbprint string
	// CreatedAt is when the attestation was verified.
	CreatedAt time.Time
}

func (r KeyRecord) clone() KeyRecord {
	r.KeyID = bytes.Clone(r.KeyID)
	r.PublicKey = bytes.Clone(r.PublicKey)
	r.Receipt = bytes.Clone(r.Receipt)
	return r
}

// KeyStore keeps attested App Attest keys durably. Implementations are
// safe for concurrent use (and, for shared backends, by many processes);
// package attesttest holds the conformance suite they must pass.
type KeyStore interface {
	// CreateKey stores rec. It returns ErrKeyExists when a record with the
	// same KeyID exists; of concurrent creators of one key id exactly one
	// succeeds.
	CreateKey(ctx context.Context, rec KeyRecord) error
	// Key returns the record for keyID, or ErrNotFound.
	Key(ctx context.Context, keyID []byte) (KeyRecord, error)
	// UpdateCounter sets the counter of keyID to newCounter only if it is
	// currently oldCounter, in one atomic step (compare-and-set). It
	// returns ErrCounterConflict when the stored counter is not
	// oldCounter, and ErrNotFound for an unknown key. Of concurrent
	// callers with the same oldCounter exactly one succeeds.
	UpdateCounter(ctx context.Context, keyID []byte, oldCounter, newCounter uint32) error
	// DeleteKey removes keyID. Deleting a missing key is not an error.
	DeleteKey(ctx context.Context, keyID []byte) error
}

// MemoryKeyStore is the in-memory [KeyStore]. It shares nothing with other
// processes and loses everything on restart: use it in tests and single
// instance deployments that accept re-attestation after a restart.
type MemoryKeyStore struct {
	mu   sync.Mutex
	keys map[string]KeyRecord
}

var _ KeyStore = (*MemoryKeyStore)(nil)

// NewMemoryKeyStore returns an empty in-memory key store.
func NewMemoryKeyStore() *MemoryKeyStore {
	return &MemoryKeyStore{keys: make(map[string]KeyRecord)}
}

// CreateKey implements [KeyStore].
func (m *MemoryKeyStore) CreateKey(ctx context.Context, rec KeyRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(rec.KeyID) == 0 {
		return errors.New("moat/attest: empty key id")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[string(rec.KeyID)]; ok {
		return ErrKeyExists
	}
	m.keys[string(rec.KeyID)] = rec.clone()
	return nil
}

// Key implements [KeyStore].
func (m *MemoryKeyStore) Key(ctx context.Context, keyID []byte) (KeyRecord, error) {
	if err := ctx.Err(); err != nil {
		return KeyRecord{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.keys[string(keyID)]
	if !ok {
		return KeyRecord{}, ErrNotFound
	}
	return rec.clone(), nil
}

// UpdateCounter implements [KeyStore].
func (m *MemoryKeyStore) UpdateCounter(ctx context.Context, keyID []byte, oldCounter, newCounter uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.keys[string(keyID)]
	if !ok {
		return ErrNotFound
	}
	if rec.Counter != oldCounter {
		return ErrCounterConflict
	}
	rec.Counter = newCounter
	m.keys[string(keyID)] = rec
	return nil
}

// DeleteKey implements [KeyStore].
func (m *MemoryKeyStore) DeleteKey(ctx context.Context, keyID []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, string(keyID))
	return nil
}
