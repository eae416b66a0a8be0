package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// readPublicKey reads a public key given as a PEM file, PEM text, or base64
// DER (PKIX). PEM may hold a PUBLIC KEY or a CERTIFICATE (its key is used).
func readPublicKey(v string) (crypto.PublicKey, error) {
	data := []byte(v)
	if !strings.Contains(v, "-----BEGIN") {
		if b, err := readFile(v); err == nil {
			data = b
		}
	}
	rest := data
	sawPEM := false
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		sawPEM = true
		switch blk.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("public key: %v", err)
			}
			return k, nil
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate: %v", err)
			}
			return c.PublicKey, nil
		}
	}
	if sawPEM {
		return nil, errors.New("no PUBLIC KEY or CERTIFICATE block")
	}
	der, err := decodeB64Flag(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, errors.New("not a PEM public key, PEM file or base64 DER")
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	return k, nil
}
