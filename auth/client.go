package auth

import (
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Client is one registered app instance (or, when Confidential, one
// server-to-server caller).
type Client struct {
	// ID is the client_id the server assigned at registration.
	ID string `json:"client_id"`
	// AppID names the app (for example a bundle id or package name).
	AppID string `json:"app_id"`
	// AppVersion is the version the app reported at registration, or the
	// trustworthy version an attestation verdict carried.
	AppVersion string `json:"app_version"`
	// Platform is "ios", "android", "web", ... as the client declared.
	Platform string `json:"platform"`
	// Channel is "phone", "tablet", "watch", "web", "iot", ...
	Channel string `json:"channel"`
	// DeviceID identifies the device the app runs on.
	DeviceID string `json:"device_id"`
	// Key is the client's public key (P-256). Every request it makes is
	// signed with the private half through a DPoP proof.
	Key *jose.JSONWebKey `json:"key,omitempty"`
	// KeyThumbprint is the RFC 7638 SHA-256 thumbprint of Key, base64url:
	// the cnf.jkt of every token, code and session issued to the client.
	KeyThumbprint string `json:"jkt"`
	// RegisteredAt is when the client registered.
	RegisteredAt time.Time `json:"registered_at"`
	// Attestation records what the registration policy learned from the
	// attestation (verdict, format, reason), for auditing and analytics.
	Attestation map[string]string `json:"attestation,omitempty"`

	// Confidential marks a server-to-server client authenticated with a
	// secret; it has no Key and gets Bearer tokens.
	Confidential bool `json:"confidential,omitempty"`
	// SecretHash is the hash of a confidential client's secret.
	SecretHash string `json:"secret_hash,omitempty"`
	// Scopes lists what a confidential client may ask for.
	Scopes []string `json:"scopes,omitempty"`
}
