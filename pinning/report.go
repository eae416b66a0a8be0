package pinning

import (
	"fmt"
	"time"
)

// Limits on a [Report]'s lists. The verifier truncates longer lists (a
// server may send any number of certificates); [ParseReport] refuses them.
const (
	maxReportChain = 16
	maxReportPins  = 64
)

// A Report describes one pin violation: a verified chain that carried
// none of the host's pins. Its JSON form is what a [ReportSender] posts
// and a [ReportHandler] accepts:
//
//	{"host": "api.example.com", "port": 443, "time": "2026-01-02T03:04:05Z",
//	 "mode": "enforce", "served_chain": ["sha256/..."],
//	 "verified_chain": ["sha256/..."], "known_pins": ["sha256/...", "sha256/..."],
//	 "pin_set_version": 3}
//
// A report comes from a client and proves nothing: it may be forged, and
// its time is the client's clock.
type Report struct {
	// Host is the host name (or IP address) connected to, normalized.
	Host string `json:"host"`
	// Port is the port, or 0 when the verifier could not know it.
	Port int `json:"port,omitempty"`
	// Time is when the violation happened, by the client's clock.
	Time time.Time `json:"time"`
	// Mode is the verifier's mode: the connection was refused (Enforce)
	// or let through (ReportOnly).
	Mode Mode `json:"mode"`
	// ServedChain are the pins of the certificates the server sent, in
	// the order sent (at most 16).
	ServedChain []Pin `json:"served_chain"`
	// VerifiedChain are the pins of the first verified chain, leaf to
	// root (at most 16).
	VerifiedChain []Pin `json:"verified_chain"`
	// KnownPins are the pins the client's set holds for Host (at most 64).
	KnownPins []Pin `json:"known_pins"`
	// PinSetVersion is the version of the client's pin set (0: unpublished).
	PinSetVersion uint64 `json:"pin_set_version,omitempty"`
}

// A Reporter receives violation reports from a [Verifier]. Report is
// called during the TLS handshake: it must return at once, never block on
// I/O, and be safe for concurrent use.
type Reporter interface {
	Report(Report)
}

// ReporterFunc adapts a function to [Reporter].
type ReporterFunc func(Report)

// Report calls f(r).
func (f ReporterFunc) Report(r Report) { f(r) }

var (
	_ Reporter = ReporterFunc(nil)
	_ Reporter = (*ReportSender)(nil)
)

// truncate caps the report's lists at the sizes ParseReport accepts.
func (r *Report) truncate() {
	r.ServedChain = r.ServedChain[:min(len(r.ServedChain), maxReportChain)]
	r.VerifiedChain = r.VerifiedChain[:min(len(r.VerifiedChain), maxReportChain)]
	r.KnownPins = r.KnownPins[:min(len(r.KnownPins), maxReportPins)]
}

// ParseReport parses and validates a report's JSON form: one object with
// the members above and no others; a host name or IP address; a port in
// 0..65535; a time; a known mode; one to 16 pins in each chain and one to
// 64 known pins. Callers limit the input's size first ([ReportHandler]
// does). Errors wrap [ErrInvalidReport] and do not echo the input.
func ParseReport(data []byte) (Report, error) {
	// The outer Mode shadows Report.Mode, so a missing mode is seen.
	var w struct {
		Report
		Mode *Mode `json:"mode"`
	}
	if err := decodeStrict(data, &w); err != nil {
		return Report{}, fmt.Errorf("%w: %w", ErrInvalidReport, err)
	}
	if w.Mode == nil {
		return Report{}, fmt.Errorf("%w: mode is missing", ErrInvalidReport)
	}
	r := w.Report
	r.Mode = *w.Mode
	if err := r.validate(); err != nil {
		return Report{}, err
	}
	return r, nil
}

func (r *Report) validate() error {
	h, _, ok := normalizeHost(r.Host)
	switch {
	case !ok:
		return fmt.Errorf("%w: host is not a host name or IP address", ErrInvalidReport)
	case r.Port < 0 || r.Port > 65535:
		return fmt.Errorf("%w: port out of range", ErrInvalidReport)
	case r.Time.IsZero():
		return fmt.Errorf("%w: time is missing", ErrInvalidReport)
	case len(r.ServedChain) == 0 || len(r.ServedChain) > maxReportChain:
		return fmt.Errorf("%w: served_chain must hold 1 to %d pins", ErrInvalidReport, maxReportChain)
	case len(r.VerifiedChain) == 0 || len(r.VerifiedChain) > maxReportChain:
		return fmt.Errorf("%w: verified_chain must hold 1 to %d pins", ErrInvalidReport, maxReportChain)
	case len(r.KnownPins) == 0 || len(r.KnownPins) > maxReportPins:
		return fmt.Errorf("%w: known_pins must hold 1 to %d pins", ErrInvalidReport, maxReportPins)
	}
	r.Host = h
	return nil
}
