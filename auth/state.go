package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/moatsec/moat/kv"
)

// Key prefixes of the server's state in kv.Store.
const (
	keySession       = "moat:auth:session:"
	keySuccess       = "moat:auth:ok:"
	keyCode          = "moat:auth:code:"
	keyRefresh       = "moat:auth:refresh:"
	keyFamilyRevoked = "moat:auth:family-revoked:"
	keyRevokedJTI    = "moat:auth:revoked:"
)

// authSession is the server side of an auth_session. The store holds it
// under the SHA-256 of the session value; the value itself (256 random
// bits) exists only at the client.
type authSession struct {
	// ID is a public identifier for logs and checks (not the secret).
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	JKT      string `json:"jkt"`
	// Subject is the user established by a check in this session.
	Subject string `json:"sub,omitempty"`
	// Scope, ACRValues and MaxAge are the pending (or last) request.
	Scope     []string `json:"scope,omitempty"`
	ACRValues []string `json:"acr_values,omitempty"`
	MaxAge    *int64   `json:"max_age,omitempty"`
	Created   int64    `json:"created"`
	Expires   int64    `json:"expires"`
}

// success is a check's success state for a client (or an SSO group on a
// device).
type success struct {
	Subject string   `json:"sub,omitempty"`
	AMR     []string `json:"amr,omitempty"`
	At      int64    `json:"at"`
	Until   int64    `json:"until"`
}

func (s *Server) putJSON(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = s.cfg.Store.Set(ctx, key, b, ttl)
	return err
}

// getJSON reads key into v; found is false on a miss.
func (s *Server) getJSON(ctx context.Context, key string, v any) (found bool, version uint64, err error) {
	it, err := s.cfg.Store.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	if err := json.Unmarshal(it.Value, v); err != nil {
		return false, 0, fmt.Errorf("moat/auth: corrupt state at %s: %w", key, err)
	}
	return true, it.Version, nil
}

// newSession stores sess as a new session (giving it a public id unless
// it has one) and returns its secret value.
func (s *Server) newSession(ctx context.Context, sess *authSession) (string, error) {
	value, err := randomToken(32)
	if err != nil {
		return "", err
	}
	if sess.ID == "" {
		if sess.ID, err = randomToken(12); err != nil {
			return "", err
		}
	}
	now := s.cfg.Now()
	sess.Created = now.Unix()
	sess.Expires = now.Add(s.cfg.RefreshTokenTTL).Unix()
	if err := s.saveSession(ctx, value, sess); err != nil {
		return "", err
	}
	return value, nil
}

func (s *Server) saveSession(ctx context.Context, value string, sess *authSession) error {
	ttl := time.Unix(sess.Expires, 0).Sub(s.cfg.Now())
	if ttl <= 0 {
		return errors.New("moat/auth: session expired")
	}
	return s.putJSON(ctx, keySession+sha256b64(value), sess, ttl)
}

// loadSession returns the session for value, or nil when it does not
// exist or has expired.
func (s *Server) loadSession(ctx context.Context, value string) (*authSession, error) {
	if value == "" || len(value) > 128 {
		return nil, nil
	}
	var sess authSession
	found, _, err := s.getJSON(ctx, keySession+sha256b64(value), &sess)
	if err != nil || !found {
		return nil, err
	}
	if s.cfg.Now().Unix() >= sess.Expires {
		return nil, nil
	}
	return &sess, nil
}

// rekeySession gives a session a new secret value and retires the old one.
func (s *Server) rekeySession(ctx context.Context, oldValue string, sess *authSession) (string, error) {
	value, err := randomToken(32)
	if err != nil {
		return "", err
	}
	if err := s.saveSession(ctx, value, sess); err != nil {
		return "", err
	}
	if oldValue != "" {
		if err := s.cfg.Store.Delete(ctx, keySession+sha256b64(oldValue)); err != nil {
			return "", err
		}
	}
	return value, nil
}

// holder returns who a check's success belongs to: the client, or for SSO
// checks of an app in an SSO group, the group on the client's device.
func (s *Server) holder(c *Client, check string) string {
	if s.sso[check] {
		if g := s.cfg.SSOGroups[c.AppID]; g != "" && c.DeviceID != "" {
			return "g:" + sha256b64(g+"\x00"+c.DeviceID)
		}
	}
	return "c:" + c.ID
}

func (s *Server) successKey(c *Client, check string) string {
	return keySuccess + s.holder(c, check) + ":" + check
}

// loadSuccess returns a check's success state if it still holds.
func (s *Server) loadSuccess(ctx context.Context, c *Client, check string) (*success, error) {
	var st success
	found, _, err := s.getJSON(ctx, s.successKey(c, check), &st)
	if err != nil || !found {
		return nil, err
	}
	if s.cfg.Now().Unix() >= st.Until {
		return nil, nil
	}
	return &st, nil
}

func (s *Server) saveSuccess(ctx context.Context, c *Client, check string, st *success) error {
	ttl := time.Unix(st.Until, 0).Sub(s.cfg.Now())
	if ttl <= 0 {
		return nil
	}
	return s.putJSON(ctx, s.successKey(c, check), st, ttl)
}

// clearSuccess forgets every check success of a client, including the
// SSO-group states its app shares (sign-out).
func (s *Server) clearSuccess(ctx context.Context, c *Client) error {
	for name := range s.checks {
		if err := s.cfg.Store.Delete(ctx, s.successKey(c, name)); err != nil {
			return err
		}
		if err := s.cfg.Store.Delete(ctx, keySuccess+"c:"+c.ID+":"+name); err != nil {
			return err
		}
	}
	return nil
}
