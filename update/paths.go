package update

import (
	"strings"
)

// Limits on what a manifest may describe.
const (
	maxPathLen  = 1024
	maxFiles    = 100_000
	maxSafeInt  = 1<<53 - 1 // the largest integer every JSON parser reads exactly
	reservedDir = ".moat"   // holds the delta description inside bundles
)

// checkPath reports whether p is an acceptable file path inside a bundle:
// 1 to 1024 bytes of printable ASCII without \ : * ? " < > |, made of
// "/"-separated segments that are not empty, ".", "..", and do not end in
// a space or a dot, and whose first segment is not ".moat". So no path is
// absolute, climbs out of the target directory, or means different files
// on different file systems.
func checkPath(p string) error {
	if p == "" || len(p) > maxPathLen {
		return unsafePath("path is empty or longer than 1024 bytes")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < 0x20 || c > 0x7e || strings.IndexByte(`\:*?"<>|`, c) >= 0 {
			return unsafePath("path has a character outside the allowed set")
		}
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		switch {
		case s == "":
			return unsafePath("path is absolute or has an empty segment")
		case s == "." || s == "..":
			return unsafePath("path has a . or .. segment")
		case strings.HasSuffix(s, " ") || strings.HasSuffix(s, "."):
			return unsafePath("path segment ends in a space or a dot")
		case i == 0 && strings.EqualFold(s, reservedDir):
			return unsafePath("path is inside the reserved .moat directory")
		}
	}
	return nil
}

// checkPathSet checks that paths, each valid and sorted strictly by byte
// order, name files that stay distinct on case-insensitive file systems:
// no two paths equal up to ASCII case, no path equal to another's parent
// directory up to case, and no directory spelled two ways.
func checkPathSet(paths []string) error {
	kinds := make(map[string]string, len(paths)) // lowercase -> original ("/"-suffixed for directories)
	for i, p := range paths {
		if err := checkPath(p); err != nil {
			return err
		}
		if i > 0 && paths[i-1] >= p {
			return malformed("files are not sorted by path without duplicates")
		}
		for j := 0; j < len(p); j++ {
			if p[j] != '/' {
				continue
			}
			dir := p[:j+1]
			low := strings.ToLower(dir)
			if prev, ok := kinds[low]; ok && prev != dir {
				return unsafePath("paths collide on a case-insensitive file system")
			}
			if _, ok := kinds[low[:len(low)-1]]; ok {
				return unsafePath("a file has the name of a directory")
			}
			kinds[low] = dir
		}
		low := strings.ToLower(p)
		if _, ok := kinds[low]; ok {
			return unsafePath("paths collide on a case-insensitive file system")
		}
		if _, ok := kinds[low+"/"]; ok {
			return unsafePath("a file has the name of a directory")
		}
		kinds[low] = p
	}
	return nil
}
