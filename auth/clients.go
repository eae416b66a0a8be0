package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
)

// ClientStore keeps registered clients: durable records (an in-memory
// implementation ships here; github.com/moatsec/moat/stores/postgres has a
// PostgreSQL one). Implementations must pass the suite in package authtest.
type ClientStore interface {
	// CreateClient stores a new client. A client with the same ID
	// already stored gives ErrClientExists (and changes nothing).
	CreateClient(ctx context.Context, c *Client) error
	// Client returns the client with id, or ErrNotFound.
	Client(ctx context.Context, id string) (*Client, error)
	// DeleteClient removes a client; deleting a missing one is not an error.
	DeleteClient(ctx context.Context, id string) error
}

// MemoryClients is the in-memory [ClientStore].
type MemoryClients struct {
	mu      sync.RWMutex
	clients map[string][]byte
}

var _ ClientStore = (*MemoryClients)(nil)

// NewMemoryClients returns an empty in-memory client store.
func NewMemoryClients() *MemoryClients {
	return &MemoryClients{clients: make(map[string][]byte)}
}

// CreateClient implements [ClientStore].
func (m *MemoryClients) CreateClient(ctx context.Context, c *Client) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c == nil || c.ID == "" {
		return fmt.Errorf("%w: client has no id", ErrInvalidConfiguration)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("moat/auth: encoding client: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.clients[c.ID]; ok {
		return ErrClientExists
	}
	m.clients[c.ID] = b
	return nil
}

// Client implements [ClientStore].
func (m *MemoryClients) Client(ctx context.Context, id string) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	b, ok := m.clients[id]
	m.mu.RUnlock()
	if !ok {
		return nil, ErrNotFound
	}
	var c Client
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("moat/auth: decoding client: %w", err)
	}
	return &c, nil
}

// DeleteClient implements [ClientStore].
func (m *MemoryClients) DeleteClient(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.clients, id)
	return nil
}

// randomToken returns n random bytes from crypto/rand, base64url encoded.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("moat/auth: reading randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// NewClientSecret returns a fresh confidential-client secret (256 bits)
// and the hash to store in Client.SecretHash. Show the secret once to the
// operator; moat keeps only the hash.
func NewClientSecret() (secret, hash string, err error) {
	secret, err = randomToken(32)
	if err != nil {
		return "", "", err
	}
	return secret, HashClientSecret(secret), nil
}

// HashClientSecret returns the stored form of a client secret. Secrets are
// 256-bit random values, so one SHA-256 is enough (they are not
// passwords and cannot be guessed from the hash).
func HashClientSecret(secret string) string {
	sum := sha256.Sum256([]byte("moat client secret\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// secretMatches compares a presented secret with a stored hash in
// constant time.
func secretMatches(secret, hash string) bool {
	got := HashClientSecret(secret)
	return subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1 && hash != ""
}
