package device

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestChooseText(t *testing.T) {
	t.Parallel()
	tr := map[string]string{"fr": "fr", "pt-br": "pt-BR", "de": "de", "zh-hant": "zh-Hant"}
	for header, want := range map[string]string{
		"":                               "default",
		"fr":                             "fr",
		"FR":                             "fr",
		"fr-CA":                          "fr",
		"fr-CA-x-private":                "fr",
		"pt-BR":                          "pt-BR",
		"pt-PT":                          "default",
		"pt":                             "default",
		"es, fr;q=0.5":                   "fr",
		"de;q=0.2, fr;q=0.9":             "fr",
		"de;q=0.9, fr;q=0.9":             "de",
		"*":                              "default",
		"*, fr;q=0.5":                    "default",
		"fr;q=0":                         "default",
		"fr;q=1.5":                       "default",
		"fr;q=abc, de":                   "de",
		"en-US,en;q=0.9,fr;q=0.8":        "fr",
		" fr ; q=0.5 ":                   "fr",
		"zh-Hant-TW":                     "zh-Hant",
		"x_y, fr":                        "fr",
		";;;,,,fr":                       "fr",
		"fr;level=1":                     "fr",
		"tlh-Latn-toolongsubtag, de":     "de",
		strings.Repeat("en,", 2000):      "default",
		strings.Repeat("es,", 30) + "fr": "default", // only the first ranges of equal q are kept
	} {
		require.Equal(t, want, chooseText(header, "default", tr), "%q", header)
	}
	require.Equal(t, "default", chooseText("fr", "default", nil))
}

func TestChooseTextKeepsBestRanges(t *testing.T) {
	t.Parallel()
	// More ranges than are kept: the highest q values survive.
	h := strings.Repeat("es;q=0.1,", maxLanguageRanges+4) + "de;q=0.9"
	require.Equal(t, "de", chooseText(h, "default", map[string]string{"de": "de"}))
}

func TestParseQValue(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{"1": 1000, "0": 0, "0.5": 500, "0.125": 125, "1.000": 1000, "1.": 1000} {
		q, ok := parseQValue(in)
		require.True(t, ok, in)
		require.Equal(t, want, q, in)
	}
	for _, in := range []string{"", "2", "1.001", "0.1234", "0.a", "-1", ".5"} {
		_, ok := parseQValue(in)
		require.False(t, ok, in)
	}
}

func FuzzChooseText(f *testing.F) {
	for _, s := range []string{"fr-CA, en;q=0.8", "*", "fr;q=0", ";;,", "zh-Hant-TW", "de;q=0.9, fr;q=0.9", "a-b-c-d-e-f-g"} {
		f.Add(s)
	}
	tr := map[string]string{"fr": "fr", "zh-hant": "zh", "de": "de", "a-b": "ab"}
	f.Fuzz(func(t *testing.T, header string) {
		got := chooseText(header, "default", tr)
		if got != "default" && got != "fr" && got != "zh" && got != "de" && got != "ab" {
			t.Fatalf("%q chose %q", header, got)
		}
	})
}
