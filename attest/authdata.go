package attest

import (
	"encoding/base64"
	"encoding/binary"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// cborDec decodes untrusted CBOR strictly: no duplicate map keys, no
// indefinite lengths, bounded nesting and sizes.
var cborDec = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  8,
		MaxArrayElements: 64,
		MaxMapPairs:      64,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// maxCBOR bounds the size of an attestation or assertion object.
const maxCBOR = 64 << 10

// attestationObject is the CBOR attestation object of App Attest and
// WebAuthn (W3C WebAuthn §6.5).
type attestationObject struct {
	Fmt      string          `cbor:"fmt"`
	AttStmt  cbor.RawMessage `cbor:"attStmt"`
	AuthData []byte          `cbor:"authData"`
}

func parseAttestationObject(b []byte) (*attestationObject, error) {
	if len(b) == 0 || len(b) > maxCBOR {
		return nil, refuse(ErrMalformed, "attestation object of %d bytes", len(b))
	}
	var ao attestationObject
	if err := cborDec.Unmarshal(b, &ao); err != nil {
		return nil, refuse(ErrMalformed, "attestation object: %v", err)
	}
	if ao.Fmt == "" || len(ao.AttStmt) == 0 || len(ao.AuthData) == 0 {
		return nil, refuse(ErrMalformed, "attestation object lacks fmt, attStmt or authData")
	}
	return &ao, nil
}

// authenticatorData is the parsed authenticator data (WebAuthn §6.1).
type authenticatorData struct {
	raw      []byte
	rpIDHash []byte
	flags    byte
	counter  uint32
	// Present when the AT flag is set.
	aaguid       []byte
	credentialID []byte
	// credentialKey is the COSE key's CBOR.
	credentialKey []byte
}

const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
	flagED = 0x80
)

func parseAuthenticatorData(b []byte) (*authenticatorData, error) {
	if len(b) < 37 {
		return nil, refuse(ErrMalformed, "authenticator data of %d bytes", len(b))
	}
	ad := &authenticatorData{raw: b, rpIDHash: b[:32], flags: b[32], counter: binary.BigEndian.Uint32(b[33:37])}
	rest := b[37:]
	if ad.flags&flagAT != 0 {
		if len(rest) < 18 {
			return nil, refuse(ErrMalformed, "attested credential data truncated")
		}
		ad.aaguid = rest[:16]
		n := int(binary.BigEndian.Uint16(rest[16:18]))
		rest = rest[18:]
		if n == 0 || n > 1023 || len(rest) < n {
			return nil, refuse(ErrMalformed, "credential id length %d", n)
		}
		ad.credentialID = rest[:n]
		rest = rest[n:]
		// The COSE key is one CBOR item; extensions may follow it.
		var key cbor.RawMessage
		after, err := cborDec.UnmarshalFirst(rest, &key)
		if err != nil {
			return nil, refuse(ErrMalformed, "credential public key: %v", err)
		}
		ad.credentialKey = key
		rest = after
	}
	if ad.flags&flagED != 0 {
		var ext cbor.RawMessage
		after, err := cborDec.UnmarshalFirst(rest, &ext)
		if err != nil {
			return nil, refuse(ErrMalformed, "extensions: %v", err)
		}
		rest = after
	}
	if len(rest) != 0 {
		return nil, refuse(ErrMalformed, "%d trailing bytes after authenticator data", len(rest))
	}
	return ad, nil
}

// decodeB64 decodes standard or URL-safe base64, padded or not, ignoring
// surrounding white space and line breaks.
func decodeB64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
