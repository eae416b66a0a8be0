package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"unicode"

	"github.com/go-jose/go-jose/v4"

	"github.com/moatsec/moat/internal/httpjson"
	"github.com/moatsec/moat/internal/nonce"
)

// maxFieldLen bounds the text fields of a registration.
const maxFieldLen = 256

// registrationRequest is the JSON body of POST <prefix>/register.
type registrationRequest struct {
	AppID       string          `json:"app_id"`
	AppVersion  string          `json:"app_version"`
	Platform    string          `json:"platform"`
	Channel     string          `json:"channel"`
	DeviceID    string          `json:"device_id"`
	JWK         json.RawMessage `json:"jwk"`
	Nonce       string          `json:"nonce"`
	Attestation json.RawMessage `json:"attestation,omitempty"`
}

// registrationResponse is the body of a successful registration.
type registrationResponse struct {
	ClientID       string `json:"client_id"`
	ClientIDIssued int64  `json:"client_id_issued_at"`
	AppID          string `json:"app_id"`
	AppVersion     string `json:"app_version"`
	Platform       string `json:"platform"`
	Channel        string `json:"channel"`
	DeviceID       string `json:"device_id"`
	JKT            string `json:"jkt"`
}

type nonceResponse struct {
	Nonce     string `json:"nonce"`
	ExpiresIn int64  `json:"expires_in"`
}

// handleNonce issues a single-use registration nonce.
func (s *Server) handleNonce(w http.ResponseWriter, r *http.Request) {
	n, err := s.nonces.Issue(r.Context(), nil)
	if err != nil {
		s.unavailable(w, r, "issuing nonce", err)
		return
	}
	httpjson.Write(w, http.StatusOK, nonceResponse{Nonce: n, ExpiresIn: int64(s.nonces.TTL().Seconds())})
}

// validField reports whether v is a non-empty, printable, bounded string.
func validField(v string) bool {
	if v == "" || len(v) > maxFieldLen {
		return false
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// validName reports whether v is a platform or channel name: 1 to 64 of
// a-z 0-9 . _ -, starting with a letter or digit.
func validName(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')) {
			return false
		}
	}
	return true
}

// parseClientKey parses a client's public JWK: a P-256 public key only.
func parseClientKey(raw json.RawMessage) (jose.JSONWebKey, string, error) {
	var jwk jose.JSONWebKey
	if len(raw) == 0 {
		return jwk, "", errors.New("jwk is required")
	}
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return jwk, "", errors.New("jwk is not a valid JSON Web Key")
	}
	if !jwk.IsPublic() {
		return jwk, "", errors.New("jwk must be a public key")
	}
	if !jwk.Valid() || algorithmFor(jwk.Key) != AlgES256 {
		return jwk, "", errors.New("jwk must be an EC P-256 public key")
	}
	jkt, err := Thumbprint(jwk.Key)
	if err != nil {
		return jwk, "", errors.New("jwk must be an EC P-256 public key")
	}
	return jose.JSONWebKey{Key: jwk.Key}, jkt, nil
}

// handleRegister registers a client instance. The request carries a DPoP
// proof signed by the key being registered (proof of possession) and a
// server nonce, which is consumed before the registration policy runs.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	var req registrationRequest
	if err := httpjson.Read(w, r, s.cfg.MaxBodySize, &req); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", err.Error())
		return
	}
	fields := []struct{ name, value string }{
		{"app_id", req.AppID}, {"platform", req.Platform}, {"channel", req.Channel}, {"device_id", req.DeviceID},
	}
	for _, f := range fields {
		if !validField(f.value) {
			oauthError(w, http.StatusBadRequest, "invalid_client_metadata", fmt.Sprintf("%s must be 1 to %d printable characters", f.name, maxFieldLen))
			return
		}
	}
	// Policies (version, attestation) are looked up by platform and
	// channel: a spelling such as "Android " must not slip past the rules
	// for "android".
	for _, f := range fields[1:3] {
		if !validName(f.value) {
			oauthError(w, http.StatusBadRequest, "invalid_client_metadata", fmt.Sprintf("%s must be lower-case letters, digits, '.', '_' or '-'", f.name))
			return
		}
	}
	// An empty app_version is allowed here: the version policy judges it
	// (below every minimum).
	if req.AppVersion != "" && !validField(req.AppVersion) {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "app_version is not printable or too long")
		return
	}
	jwk, jkt, err := parseClientKey(req.JWK)
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", err.Error())
		return
	}
	proof, ok := s.verifyProof(w, r, s.endpoints.register)
	if !ok {
		return
	}
	if proof.KeyThumbprint != jkt {
		oauthError(w, http.StatusBadRequest, CodeInvalidDPoPProof, "the DPoP proof must be signed by the key being registered")
		return
	}
	if _, err := s.nonces.Consume(r.Context(), req.Nonce); err != nil {
		if errors.Is(err, nonce.ErrInvalid) {
			oauthError(w, http.StatusBadRequest, CodeInvalidRequest, "nonce unknown, expired or already used; get a new one")
			return
		}
		s.unavailable(w, r, "consuming registration nonce", err)
		return
	}
	id, err := randomToken(16)
	if err != nil {
		s.unavailable(w, r, "making client id", err)
		return
	}
	client := &Client{
		ID: id, AppID: req.AppID, AppVersion: req.AppVersion, Platform: req.Platform,
		Channel: req.Channel, DeviceID: req.DeviceID, Key: &jwk, KeyThumbprint: jkt,
		RegisteredAt: s.cfg.Now().UTC(),
	}
	reg := &Registration{
		AppID: req.AppID, AppVersion: req.AppVersion, Platform: req.Platform, Channel: req.Channel,
		DeviceID: req.DeviceID, KeyThumbprint: jkt, Nonce: req.Nonce, Attestation: req.Attestation,
		AcceptLanguage: r.Header.Get("Accept-Language"),
	}
	if err := s.cfg.RegistrationPolicy.AllowRegistration(r.Context(), reg, client); err != nil {
		var ref *Refusal
		if errors.As(err, &ref) {
			s.emit(r.Context(), Event{Kind: EventRegistrationRefused, Client: client, Reason: ref.Code})
		}
		s.refuse(w, r, "registration policy", err)
		return
	}
	if client.ID != id || client.KeyThumbprint != jkt {
		s.unavailable(w, r, "registration policy", errors.New("policy changed the client id or key"))
		return
	}
	if err := s.cfg.Clients.CreateClient(r.Context(), client); err != nil {
		s.unavailable(w, r, "storing client", err)
		return
	}
	s.emit(r.Context(), Event{Kind: EventRegistration, Client: client, Reason: client.Attestation["verdict"]})
	httpjson.Write(w, http.StatusCreated, registrationResponse{
		ClientID: client.ID, ClientIDIssued: client.RegisteredAt.Unix(), AppID: client.AppID,
		AppVersion: client.AppVersion, Platform: client.Platform, Channel: client.Channel,
		DeviceID: client.DeviceID, JKT: jkt,
	})
}
