package securestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
)

var fuzzKDF = Argon2Params{Time: 1, MemoryKiB: MinArgon2MemoryKiB, Threads: 1}

// FuzzParseHeader feeds arbitrary headers to the parser and, when one
// parses, to the keyring opener with a fixed key: no panic, no huge
// allocation, and every error is one of the documented ones.
func FuzzParseHeader(f *testing.F) {
	ctx := context.Background()
	for _, src := range []KeySource{Passcode([]byte("pw")), FromProvider(fuzzSealer(f))} {
		b := NewMemoryBackend()
		if _, err := Create(ctx, b, src, Config{Argon2: fuzzKDF}); err != nil {
			f.Fatal(err)
		}
		raw, _ := b.Get(ctx, headerName)
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
	}
	f.Add(passcodeHeader(Argon2Params{Time: 3, MemoryKiB: 4 << 20, Threads: 4}))
	f.Add(passcodeHeader(Argon2Params{Time: 0, MemoryKiB: 64 << 10, Threads: 4}))
	f.Add([]byte("MSST"))
	f.Add([]byte{})
	kek := bytes.Repeat([]byte{1}, 32)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err != nil {
			return
		}
		if h.source == sourcePasscode {
			if err := h.argon2.validate(); err != nil {
				t.Fatalf("parsed a header with unsafe parameters: %v", err)
			}
		}
		_, _ = openKeyring(h, kek)
	})
}

// FuzzParseKeyring covers the decrypted keyring's parser.
func FuzzParseKeyring(f *testing.F) {
	k := &keyringData{aead: XChaCha20Poly1305, nameKey: make([]byte, 32), indexKey: make([]byte, 32), current: 1,
		keys: []dataKey{{1, make([]byte, 32)}, {5, make([]byte, 32)}}}
	good := k.marshal()
	f.Add(good)
	f.Add(good[:keyringFixed])
	f.Fuzz(func(t *testing.T, b []byte) {
		kd, err := parseKeyring(b)
		if err == nil {
			if _, err := newRing(kd); err != nil {
				t.Fatalf("parsed keyring unusable: %v", err)
			}
		}
	})
}

// FuzzOpenRecord feeds arbitrary bytes as a stored record to Get, and as
// a sealed value to a Sealer: the result is the original value (for the
// unmodified seeds) or ErrCorruptRecord, never a panic or other bytes.
func FuzzOpenRecord(f *testing.F) {
	ctx := context.Background()
	b := NewMemoryBackend()
	s, err := Create(ctx, b, Passcode([]byte("pw")), Config{Argon2: fuzzKDF})
	if err != nil {
		f.Fatal(err)
	}
	const value = "the stored value"
	if err := s.Put(ctx, "k", []byte(value)); err != nil {
		f.Fatal(err)
	}
	name := kvName(s.ring.Load(), "k")
	rec, _ := b.Get(ctx, name)
	sealer := fuzzSealer(f)
	sealed, _ := sealer.Seal(ctx, []byte(value), []byte("ad"))
	xs, _ := NewSealer(SealerConfig{Keys: []SealerKey{{ID: 1, Secret: bytes.Repeat([]byte{9}, 32)}}, AEAD: XChaCha20Poly1305})
	xsealed, _ := xs.Seal(ctx, []byte(value), []byte("ad"))
	for _, seed := range [][]byte{rec, sealed, xsealed, {}, make([]byte, 5), rec[:23], rec[:39], sealed[:39]} {
		f.Add(seed)
	}
	long := bytes.Clone(rec)
	binary.BigEndian.PutUint16(long[6:], 0xffff)
	f.Add(long)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := b.Put(ctx, name, raw); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "k")
		checkOpened(t, got, err, value)
		got, err = sealer.Open(ctx, raw, []byte("ad"))
		checkOpened(t, got, err, value)
		got, err = xs.Open(ctx, raw, []byte("ad"))
		checkOpened(t, got, err, value)
	})
}

func checkOpened(t *testing.T, got []byte, err error, want string) {
	t.Helper()
	if err == nil && string(got) != want {
		t.Fatalf("opened to %q", got)
	}
	if err != nil && (got != nil || !errors.Is(err, ErrCorruptRecord)) {
		t.Fatalf("error %v with %d bytes", err, len(got))
	}
}

func fuzzSealer(f *testing.F) *Sealer {
	s, err := NewSealer(SealerConfig{Keys: []SealerKey{{ID: 3, Secret: bytes.Repeat([]byte{3}, 32)}}})
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// FuzzOpenName feeds arbitrary backend names (file names in a directory
// store) to the name decryption that List uses: no panic, and only a name
// the store wrote decrypts.
func FuzzOpenName(f *testing.F) {
	n, err := newNamer(bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32))
	if err != nil {
		f.Fatal(err)
	}
	good := n.seal("", kindKV, "", "a key")
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(n.seal("", kindKV, "", string(bytes.Repeat([]byte{'x'}, MaxKeyLen))))
	f.Add("")
	f.Add("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	f.Add("AAAA====")
	f.Fuzz(func(t *testing.T, enc string) {
		key, err := n.open(kindKV, "", enc)
		if err != nil {
			if !errors.Is(err, ErrCorruptRecord) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if again := n.seal("", kindKV, "", key); again != enc {
			t.Fatalf("%q opened to %q, which seals to %q", enc, key, again)
		}
	})
}
