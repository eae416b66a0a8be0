package strictjson

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	names := []string{"typ", "alg", "jwk", "device_id", "scope"}
	for _, c := range []struct {
		in  string
		err error
	}{
		{`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256"}}`, nil},
		{`{"typ":"x","other":1,"Nested":{"A":1,"b":[1,{"c":2}]}}`, nil},
		{`{"TYP":"dpop+jwt","alg":"ES256"}`, ErrNameCase},
		{`{"device_id":"a","DEVICE_ID":"b"}`, ErrDuplicateName},
		{`{"device_id":"a","device_id":"b"}`, ErrDuplicateName},
		{`{"jwk":{"x":"1","X":"2"}}`, ErrDuplicateName},
		{`{"ſcope":"x"}`, ErrNameCase}, // encoding/json reads U+017F as s
		{"{\"device_id\":\"dev\xff\"}", ErrInvalidUTF8},
		{`{"typ":"x"} {}`, ErrTrailing},
		{`{"typ":"x"}x`, ErrTrailing},
		{`{"\u0054YP":"dpop+jwt"}`, ErrNameCase},
		{`{"a":"\"}"}`, nil},
		{`[1,2]`, ErrNotObject},
		{`"typ"`, ErrNotObject},
		{`{"typ":`, ErrInvalid},
		{``, ErrInvalid},
		{`{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, ErrTooDeep},
	} {
		err := Check([]byte(c.in), names)
		if c.err == nil {
			require.NoError(t, err, c.in)
		} else {
			require.ErrorIs(t, err, c.err, c.in)
		}
	}
}

func TestFieldNames(t *testing.T) {
	t.Parallel()
	type body struct {
		AppID    string `json:"app_id"`
		Platform string `json:"platform,omitempty"`
		Skip     string `json:"-"`
		Plain    int
		hidden   int
	}
	require.Equal(t, []string{"app_id", "platform", "Plain"}, FieldNames(&body{}))
	require.Nil(t, FieldNames(3))
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC"}}`))
	f.Add([]byte(`{"TYP":1,"typ":2}`))
	f.Add([]byte("{\"a\":\"\xff\"}"))
	f.Add([]byte(`{"a":[1,{"b":"\u0054"}],"\u0054YP":true}`))
	f.Add([]byte(`{"typ":"x","jwk":{"kty":"EC","KTY":"EC"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := Check(data, []string{"typ", "alg"})
		// Whenever the document is valid JSON, Check must agree with the
		// tokenizer-based reference on the verdict about names.
		want := reference(data, []string{"typ", "alg"})
		if want == nil || want == ErrDuplicateName || want == ErrNameCase {
			if json.Valid(data) && got != want {
				t.Fatalf("Check(%q) = %v, reference %v", data, got, want)
			}
		}
		if json.Valid(data) && got == nil && want != nil {
			t.Fatalf("Check(%q) passed, reference %v", data, want)
		}
	})
}
