package pinning

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/moatsec/moat/internal/httpjson"
)

// DefaultMaxReportBytes is a [ReportHandler]'s body limit when its config
// gives none. A report with the most pins the format allows is about 5 KiB.
const DefaultMaxReportBytes = 16 << 10

// ReportHandlerConfig configures a [ReportHandler].
type ReportHandlerConfig struct {
	// OnReport receives every valid report, with the request's context
	// (which carries whatever earlier middleware put there). Required. It
	// runs on the request's goroutine: hand slow work off.
	OnReport func(ctx context.Context, r Report)
	// MaxBytes is the largest body accepted; larger ones get 413. Zero
	// means DefaultMaxReportBytes.
	MaxBytes int64
}

// A ReportHandler receives violation reports POSTed by clients (a
// [ReportSender] posts them): it accepts only POST with a JSON body of at
// most MaxBytes that [ParseReport] accepts, hands the report to OnReport,
// and answers 204. Anything else gets an RFC 6749-style JSON error: 405,
// 413, 415 or 400. It does not authenticate the sender: anyone can post a
// report, so treat reports as signals, not facts, and rate-limit the route
// as any unauthenticated endpoint.
type ReportHandler struct {
	onReport func(context.Context, Report)
	maxBytes int64
}

var _ http.Handler = (*ReportHandler)(nil)

// NewReportHandler returns a handler for cfg.
func NewReportHandler(cfg ReportHandlerConfig) (*ReportHandler, error) {
	if cfg.OnReport == nil {
		return nil, errors.New("moat/pinning: ReportHandlerConfig.OnReport is required")
	}
	if cfg.MaxBytes < 0 {
		return nil, errors.New("moat/pinning: ReportHandlerConfig.MaxBytes must not be negative")
	}
	h := &ReportHandler{onReport: cfg.OnReport, maxBytes: cfg.MaxBytes}
	if h.maxBytes == 0 {
		h.maxBytes = DefaultMaxReportBytes
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *ReportHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpjson.WriteError(w, http.StatusMethodNotAllowed, "invalid_request", "reports are sent with POST", nil)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		httpjson.WriteError(w, http.StatusUnsupportedMediaType, "invalid_request", "content type must be application/json", nil)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpjson.WriteError(w, http.StatusRequestEntityTooLarge, "invalid_request", fmt.Sprintf("report larger than %d bytes", h.maxBytes), nil)
			return
		}
		httpjson.WriteError(w, http.StatusBadRequest, "invalid_request", "could not read the report", nil)
		return
	}
	rep, err := ParseReport(body)
	if err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, "invalid_request", err.Error(), nil)
		return
	}
	h.onReport(r.Context(), rep)
	w.WriteHeader(http.StatusNoContent)
}
