package update

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

// fuzzKey is fixed so that seeds stay valid across runs.
var fuzzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

func fuzzRoot(t testing.TB) []byte {
	k := []crypto.Signer{fuzzKey}
	r, err := SignRoot(Root{Version: 1, Expires: t0.Add(time.Hour), RootKeys: pubs(t, k...), RootThreshold: 1,
		ManifestKeys: pubs(t, k...), ManifestThreshold: 1}, k...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fuzzManifest() Manifest {
	files := []string{"a.txt", "b/c.js", "b/d.css"}
	m := Manifest{AppID: "com.example.app", Platform: "ios", AppVersions: ">=1 <2", BundleVersion: 2, Created: t0, Expires: t0.Add(time.Hour)}
	for _, f := range files {
		m.Files = append(m.Files, File{Path: f, Size: int64(len(f)), SHA256: sha256.Sum256([]byte(f))})
	}
	return m
}

func FuzzManifest(f *testing.F) {
	signed, err := SignManifest(fuzzManifest(), fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	payload, _ := unverifiedPayload(signed)
	f.Add(signed)
	f.Add(payload)
	f.Add(fuzzRoot(f))
	f.Add([]byte(`{"payload":"e30","signatures":[{"protected":"e30","signature":""}]}`))
	f.Add([]byte(strings.Replace(string(payload), `"a.txt"`, `"../a.txt"`, 1)))
	f.Add([]byte(strings.Replace(string(payload), `"files":[`, `"files":[{"path":"A.TXT","size":0,"sha256":"00"},`, 1)))
	f.Add([]byte(`{"type":"moat.update.manifest.v1","type":"x"}`))
	f.Add([]byte(`[` + strings.Repeat(`[`, 100)))
	root, err := ParseRoot(fuzzRoot(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := root.VerifyManifest(data, t0); err == nil {
			checkManifestInvariants(t, m)
		}
		if m, err := decodeManifestPayload(data); err == nil {
			checkManifestInvariants(t, m)
			// What parses must survive a signing round trip unchanged.
			doc, err := SignManifest(*m, fuzzKey)
			if err != nil {
				t.Fatalf("a parsed manifest does not sign: %v", err)
			}
			back, err := root.VerifyManifest(doc, m.Created)
			if err != nil || back.BundleVersion != m.BundleVersion || len(back.Files) != len(m.Files) {
				t.Fatalf("round trip changed the manifest: %v", err)
			}
		}
	})
}

func checkManifestInvariants(t *testing.T, m *Manifest) {
	paths := make([]string, len(m.Files))
	for i, f := range m.Files {
		paths[i] = f.Path
		if f.Size < 0 {
			t.Fatal("negative size accepted")
		}
	}
	if err := checkPathSet(paths); err != nil {
		t.Fatalf("accepted manifest has bad paths: %v", err)
	}
	if !m.Expires.After(m.Created) {
		t.Fatal("expiry not after creation")
	}
}

func FuzzRoot(f *testing.F) {
	good := fuzzRoot(f)
	payload, _ := unverifiedPayload(good)
	f.Add(good)
	f.Add(payload)
	f.Add([]byte(strings.Replace(string(payload), `"root_threshold":1`, `"root_threshold":2`, 1)))
	f.Add([]byte(strings.Replace(string(payload), `"kty":"OKP"`, `"kty":"EC"`, 1)))
	f.Add([]byte(`{"payload":"","signatures":[]}`))
	f.Add([]byte(`{}`))
	trusted, err := ParseRoot(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := ParseRoot(data); err == nil {
			if r.Version() < 1 || r.payload.RootThreshold < 1 || r.payload.RootThreshold > len(r.rootKeys) {
				t.Fatal("accepted a root with an impossible threshold")
			}
			_ = r.Root()
		}
		if _, err := trusted.Update(data); err == nil {
			var p rootPayload
			pl, _ := unverifiedPayload(data)
			_ = json.Unmarshal(pl, &p)
			if p.Version != 2 {
				t.Fatal("accepted a rotation that is not the next version")
			}
		}
		var p rootPayload
		if decodeStrict(data, &p, rootMembers...) == nil {
			_, _, _ = p.check()
		}
	})
}

func FuzzBundleIndex(f *testing.F) {
	m := fuzzManifest()
	base := fuzzManifest()
	base.BundleVersion = 1
	base.Files = []File{m.Files[0], {Path: "b/c.js", Size: 5, SHA256: sha256.Sum256([]byte("old-c"))}, m.Files[2],
		{Path: "old.txt", Size: 3, SHA256: sha256.Sum256([]byte("old"))}}

	full := func(w *bundleWriter) {
		for _, fl := range m.Files {
			e, _ := w.create(fl.Path)
			_, _ = io.WriteString(e, fl.Path)
		}
	}
	for _, deflate := range []bool{false, true} {
		var b bytes.Buffer
		bw := newBundleWriter(&b, deflate)
		full(bw)
		_ = bw.close()
		f.Add(b.Bytes(), false)
		b.Reset()
		bw = newBundleWriter(&b, deflate)
		e, _ := bw.create("b/c.js")
		_, _ = io.WriteString(e, "b/c.js")
		_ = bw.writeDelta(deltaPayload{From: 1, To: 2, Deleted: []string{"old.txt"}})
		_ = bw.close()
		f.Add(b.Bytes(), true)
	}
	f.Add(zipOf(f, zipEntry{name: "../../x", data: []byte("x")}), false)
	f.Add([]byte("PK\x05\x06"+strings.Repeat("\x00", 18)), false)
	f.Fuzz(func(t *testing.T, data []byte, delta bool) {
		var b *Manifest
		if delta {
			b = &base
		}
		idx, err := readBundleIndex(bytes.NewReader(data), int64(len(data)), &m, b)
		if err != nil {
			return
		}
		for _, fl := range m.Files {
			e, ok := idx.entries[fl.Path]
			if !ok {
				continue
			}
			if err := checkPath(e.Name); err != nil {
				t.Fatalf("accepted an unsafe entry name: %v", err)
			}
			_ = extractEntry(e, fl.Size, &fl.SHA256, io.Discard, nil)
		}
	})
}
