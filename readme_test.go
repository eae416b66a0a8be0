package moat_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The README's "Protect your handler" snippet must stay the code of
// Example, line for line, so that it cannot rot.
func TestREADMESnippetMatchesExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	example, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	text := string(readme)
	start := strings.Index(text, "## Protect your handler")
	require.GreaterOrEqual(t, start, 0)
	block := text[start:]
	block = block[strings.Index(block, "```go\n")+len("```go\n"):]
	block = block[:strings.Index(block, "```")]
	exampleText := string(example)
	pos := 0
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		i := strings.Index(exampleText[pos:], line)
		require.GreaterOrEqual(t, i, 0, "README line not in Example (in order): %s", line)
		pos += i + len(line)
	}
}
