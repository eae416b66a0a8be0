package attest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// GoogleRevocationListURL is where Google publishes the attestation
// certificate status list. Only [FetchRevocationList] and
// [RefreshRevocationFile] use the network; verification never does.
const GoogleRevocationListURL = "https://android.googleapis.com/attestation/status"

// maxRevocationList bounds the size of a status list.
const maxRevocationList = 32 << 20

// RevocationEntry is one entry of Google's status list.
type RevocationEntry struct {
	// Status is "REVOKED" or "SUSPENDED". Any listed certificate is refused,
	// whatever its status.
	Status string `json:"status"`
	// Reason is "KEY_COMPROMISE", "CA_COMPROMISE", "SUPERSEDED",
	// "SOFTWARE_FLAW" or empty.
	Reason  string `json:"reason,omitempty"`
	Expires string `json:"expires,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// RevocationList is Google's attestation certificate status list, loaded
// from a file the operator refreshes ([RefreshRevocationFile]). It is safe
// for concurrent use; [RevocationList.Update] swaps the contents while
// verifiers use it.
type RevocationList struct {
	entries atomic.Pointer[map[string]RevocationEntry]
}

// ParseRevocationList parses a status list in Google's JSON format,
// {"entries": {"<serial in hex>": {"status": "REVOKED", ...}}}. A
// document without an "entries" object is an error (an empty object
// "entries": {} is a valid, empty list).
func ParseRevocationList(data []byte) (*RevocationList, error) {
	l := &RevocationList{}
	if err := l.Update(data); err != nil {
		return nil, err
	}
	return l, nil
}

// LoadRevocationList reads and parses a status list file.
func LoadRevocationList(path string) (*RevocationList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("moat/attest: reading revocation list: %w", err)
	}
	return ParseRevocationList(b)
}

// Update replaces the list's contents with the parsed data, atomically;
// on error the list is unchanged.
func (l *RevocationList) Update(data []byte) error {
	if len(data) > maxRevocationList {
		return errors.New("moat/attest: revocation list too large")
	}
	var doc struct {
		Entries *map[string]RevocationEntry `json:"entries"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("moat/attest: revocation list: %w", err)
	}
	if doc.Entries == nil {
		return errors.New("moat/attest: revocation list has no entries object")
	}
	m := make(map[string]RevocationEntry, len(*doc.Entries))
	for k, v := range *doc.Entries {
		n, ok := new(big.Int).SetString(strings.TrimPrefix(strings.ToLower(k), "0x"), 16)
		if !ok {
			return fmt.Errorf("moat/attest: revocation list: serial %q is not hexadecimal", k)
		}
		m[n.Text(16)] = v
	}
	l.entries.Store(&m)
	return nil
}

// Len returns the number of entries.
func (l *RevocationList) Len() int {
	if m := l.entries.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// Lookup returns the entry for a certificate serial number, if listed.
func (l *RevocationList) Lookup(serial *big.Int) (RevocationEntry, bool) {
	m := l.entries.Load()
	if m == nil || serial == nil {
		return RevocationEntry{}, false
	}
	e, ok := (*m)[new(big.Int).Abs(serial).Text(16)]
	return e, ok
}

// FetchRevocationList downloads and parses a status list (normally from
// [GoogleRevocationListURL]) with client, which must not be nil. It
// returns the raw bytes too, to write them to a file.
func FetchRevocationList(ctx context.Context, client *http.Client, url string) (*RevocationList, []byte, error) {
	if client == nil {
		return nil, nil, errors.New("moat/attest: FetchRevocationList needs an http.Client")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("moat/attest: revocation list request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("moat/attest: fetching revocation list: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("moat/attest: fetching revocation list: HTTP %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRevocationList+1))
	if err != nil {
		return nil, nil, fmt.Errorf("moat/attest: reading revocation list: %w", err)
	}
	l, err := ParseRevocationList(b)
	if err != nil {
		return nil, nil, err
	}
	return l, b, nil
}

// RefreshRevocationFile downloads the status list from url and, only if it
// parses, replaces the file at path atomically (write to a temporary file
// in the same directory, then rename). Run it from a timer or cron job;
// then [RevocationList.Update] (or restart) to use it. A failed refresh
// leaves the old file in place.
func RefreshRevocationFile(ctx context.Context, client *http.Client, url, path string) (*RevocationList, error) {
	l, b, err := FetchRevocationList(ctx, client, url)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".revocations-*.json")
	if err != nil {
		return nil, fmt.Errorf("moat/attest: writing revocation list: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("moat/attest: writing revocation list: %w", werr)
	}
	return l, nil
}
