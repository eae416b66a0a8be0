package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/moatsec/moat/auth"
)

// Clients is the PostgreSQL [auth.ClientStore]. A client is one row of
// the table clients: its id and the whole [auth.Client] as JSON (the key
// as a JWK, as encoding/json writes it; every field of auth.Client
// round-trips through encoding/json). jsonb cannot hold the character
// U+0000: a client with one in a string field is refused with an error
// (moat's registration accepts only printable fields).
type Clients struct {
	db *pgxpool.Pool
}

// CreateClient implements [auth.ClientStore]. One INSERT ... ON CONFLICT
// DO NOTHING: of concurrent creators of one id exactly one inserts, the
// others get [auth.ErrClientExists].
func (s *Clients) CreateClient(ctx context.Context, c *auth.Client) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c == nil || c.ID == "" {
		return fmt.Errorf("%w: client has no id", auth.ErrInvalidConfiguration)
	}
	rec, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("moat/postgres: encoding client: %w", err)
	}
	tag, err := s.db.Exec(ctx, `INSERT INTO clients (client_id, record) VALUES ($1, $2) ON CONFLICT (client_id) DO NOTHING`, c.ID, rec)
	if err != nil {
		return dbError("creating client", err)
	}
	if tag.RowsAffected() == 0 {
		return auth.ErrClientExists
	}
	return nil
}

// Client implements [auth.ClientStore].
func (s *Clients) Client(ctx context.Context, id string) (*auth.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rec []byte
	err := s.db.QueryRow(ctx, `SELECT record FROM clients WHERE client_id = $1`, id).Scan(&rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, dbError("reading client", err)
	}
	var c auth.Client
	if err := json.Unmarshal(rec, &c); err != nil {
		return nil, fmt.Errorf("moat/postgres: decoding client: %w", err)
	}
	return &c, nil
}

// DeleteClient implements [auth.ClientStore].
func (s *Clients) DeleteClient(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM clients WHERE client_id = $1`, id); err != nil {
		return dbError("deleting client", err)
	}
	return nil
}
