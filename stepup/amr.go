package stepup

import (
	"slices"
	"time"
)

// Authentication method references (RFC 8176 §2) that moat's checks put
// in a success's AMR and so in the access token's amr claim.
const (
	AMRPassword      = "pwd"  // password
	AMRPIN           = "pin"  // personal identification number
	AMROTP           = "otp"  // one-time password (RFC 4226 HOTP, RFC 6238 TOTP)
	AMRSMS           = "sms"  // confirmation by a code sent in a text message
	AMRTelephone     = "tel"  // confirmation by a telephone call
	AMRHardwareKey   = "hwk"  // proof of possession of a hardware-secured key
	AMRSoftwareKey   = "swk"  // proof of possession of a software-secured key
	AMRFingerprint   = "fpt"  // fingerprint biometric
	AMRFace          = "face" // facial recognition
	AMRIris          = "iris" // iris scan
	AMRKnowledge     = "kba"  // knowledge-based authentication
	AMRMultiFactor   = "mfa"  // several factors (of different kinds)
	AMRUserPresence  = "user" // user presence test
	AMRSmartCard     = "sc"   // smart card
	AMRRiskBased     = "rba"  // risk-based authentication
	AMRWindowsAuth   = "wia"  // Windows integrated authentication
	AMRVoice         = "vbm"  // voice biometric
	AMRRetina        = "retina"
	AMRGeolocation   = "geo"
	AMRMultiChannel  = "mca" // confirmation through several channels
	AMRProofOfPosess = "pop" // proof of possession of a key (RFC 9449 style)

	// AMREmail is moat's value for a code sent by e-mail. It is not in the
	// RFC 8176 registry (which has no e-mail method); RFC 8176 lets parties
	// agree on other values, and this one is in common use.
	AMREmail = "email"
	// AMRRecoveryCode is moat's value for a single-use recovery code (NIST
	// SP 800-63B's "look-up secret"). It is not in the RFC 8176 registry;
	// it is kept apart from "otp" so that a policy asking for an OTP is not
	// satisfied by a printed recovery code.
	AMRRecoveryCode = "recovery"
)

// Default acr values. A token's acr says how strongly its user
// authenticated; step-up policies ask for one of a list of acr values (RFC
// 9470 acr_values). moat's defaults are two levels, which [ACRFor] derives
// from the amr of a session:
//
//   - [ACROneFactor] ("1fa"): one or more methods of one factor kind
//     (a password alone, a PIN alone, an SMS code alone).
//   - [ACRMultiFactor] ("mfa"): methods of at least two different kinds
//     (password + SMS code, password + TOTP, a device key released by a
//     fingerprint).
//
// Deployments with an established vocabulary (NIST AAL, eIDAS levels of
// assurance) use their own values and map them to checks in auth.
const (
	ACROneFactor   = "1fa"
	ACRMultiFactor = "mfa"
)

// FactorKind is the kind of an authentication factor.
type FactorKind int

const (
	// FactorUnknown is a method moat does not classify.
	FactorUnknown FactorKind = iota
	// FactorKnowledge is something the user knows (password, PIN).
	FactorKnowledge
	// FactorPossession is something the user has (a phone receiving an SMS
	// code, an authenticator app's seed, a hardware key, recovery codes).
	FactorPossession
	// FactorInherence is something the user is (fingerprint, face).
	FactorInherence
)

// KindOf returns the factor kind of an amr value.
func KindOf(amr string) FactorKind {
	switch amr {
	case AMRPassword, AMRPIN, AMRKnowledge:
		return FactorKnowledge
	case AMROTP, AMRSMS, AMRTelephone, AMRHardwareKey, AMRSoftwareKey, AMRSmartCard,
		AMREmail, AMRRecoveryCode, AMRProofOfPosess:
		return FactorPossession
	case AMRFingerprint, AMRFace, AMRIris, AMRRetina, AMRVoice:
		return FactorInherence
	}
	return FactorUnknown
}

// CombineAMR merges the AMR lists of several check successes into the amr
// of one session: each value once, sorted, with [AMRMultiFactor] added when
// the methods cover at least two factor kinds.
func CombineAMR(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, m := range l {
			if m != "" && !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	if multiFactor(out) && !slices.Contains(out, AMRMultiFactor) {
		out = append(out, AMRMultiFactor)
	}
	slices.Sort(out)
	return out
}

func multiFactor(amr []string) bool {
	var kinds [4]bool
	n := 0
	for _, m := range amr {
		if k := KindOf(m); k != FactorUnknown && !kinds[k] {
			kinds[k] = true
			n++
		}
	}
	return n >= 2
}

// ACRFor returns moat's default acr for a session with these amr values:
// [ACRMultiFactor] when they cover two factor kinds (or include "mfa"),
// [ACROneFactor] when there is at least one method, "" for none.
func ACRFor(amr []string) string {
	switch {
	case len(amr) == 0:
		return ""
	case slices.Contains(amr, AMRMultiFactor) || multiFactor(amr):
		return ACRMultiFactor
	}
	return ACROneFactor
}

// Defaults shared by the checks. Each check's config can override them.
const (
	// DefaultValidFor is how long a check's success holds when its config
	// leaves ValidFor zero (MobileFirst's default success state of one hour).
	DefaultValidFor = time.Hour
)
