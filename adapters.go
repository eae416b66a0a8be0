package moat

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/device"
)

// The capability packages do not import each other; these adapters fit
// attest and device to the interfaces auth defines.

// registrationPolicy runs the attestation policy, then device status and
// version policy (which may use the attested version code).
type registrationPolicy struct {
	attest  *attest.Policy
	devices *device.Control
}

var _ auth.RegistrationPolicy = registrationPolicy{}

func (p registrationPolicy) AllowRegistration(ctx context.Context, reg *auth.Registration, c *auth.Client) error {
	res, err := p.attest.Verify(ctx, attest.Registration{
		AppID: reg.AppID, AppVersion: reg.AppVersion, Platform: reg.Platform, Channel: reg.Channel,
		Nonce: reg.Nonce, KeyThumbprint: reg.KeyThumbprint, Attestation: reg.Attestation,
	})
	var ae *attest.Error
	if errors.As(err, &ae) {
		return &auth.Refusal{Status: http.StatusForbidden, Code: ae.Code, Description: ae.Description()}
	}
	if err != nil {
		return err
	}
	c.Attestation = res.Facts()
	dc := deviceClient(c)
	dc.AcceptLanguage = reg.AcceptLanguage
	return deviceRefusal(p.devices.Register(ctx, dc, device.Info{}))
}

// clientPolicy asks device control at authorization and refresh.
type clientPolicy struct{ devices *device.Control }

var _ auth.ClientPolicy = clientPolicy{}

func (p clientPolicy) AllowClient(ctx context.Context, c *auth.Client) error {
	if c.Confidential {
		return nil // server-to-server callers have no device
	}
	return deviceRefusal(p.devices.Allow(ctx, deviceClient(c)))
}

func deviceClient(c *auth.Client) device.Client {
	dc := device.Client{
		DeviceID: c.DeviceID, AppID: c.AppID, Platform: c.Platform, AppVersion: c.AppVersion,
		ClientID: c.ID,
	}
	if v, err := strconv.ParseInt(c.Attestation["version_code"], 10, 64); err == nil {
		dc.AttestedVersionCode = v
	}
	return dc
}

// deviceRefusal maps a device refusal to auth's; any other error stays a
// failure to decide (503).
func deviceRefusal(err error) error {
	var r *device.Refusal
	if errors.As(err, &r) {
		return &auth.Refusal{Status: r.Status, Code: r.Code, Description: r.Description, Extra: r.Extra()}
	}
	return err
}
