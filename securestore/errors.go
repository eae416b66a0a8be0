package securestore

import "errors"

var (
	// ErrNotFound reports a key, document or backend name that does not exist.
	ErrNotFound = errors.New("moat/securestore: not found")
	// ErrCorruptRecord reports a record (or a sealed value) that is
	// truncated, altered, of an unknown format version, or sealed under a
	// data key the store no longer has. Nothing of its content is returned.
	ErrCorruptRecord = errors.New("moat/securestore: corrupt record")
	// ErrCorruptHeader reports a store header that is truncated or altered.
	ErrCorruptHeader = errors.New("moat/securestore: corrupt store header")
	// ErrWrongPasscode reports a passcode (or provider key) that does not
	// unlock the store. It says nothing about how close the guess was.
	ErrWrongPasscode = errors.New("moat/securestore: wrong passcode or key")
	// ErrEmptyPasscode reports an empty passcode given to Create or
	// ChangePasscode.
	ErrEmptyPasscode = errors.New("moat/securestore: empty passcode")
	// ErrNoKeySource reports a zero [KeySource]: a store needs a passcode or
	// a key provider.
	ErrNoKeySource = errors.New("moat/securestore: no passcode or key provider given")
	// ErrUnsafeParameters reports Argon2id parameters outside the bounds in
	// [Argon2Params]; a header carrying them is refused before any memory is
	// allocated.
	ErrUnsafeParameters = errors.New("moat/securestore: key-derivation parameters out of bounds")
	// ErrUnknownAlgorithm reports an AEAD identifier this version does not
	// know.
	ErrUnknownAlgorithm = errors.New("moat/securestore: unknown algorithm")
	// ErrInvalidKey reports an empty or too long key, document id or
	// collection name, or a sealer key that is not 32 bytes.
	ErrInvalidKey = errors.New("moat/securestore: invalid key")
	// ErrInvalidName reports a backend name outside the alphabet in
	// [ValidName].
	ErrInvalidName = errors.New("moat/securestore: invalid backend name")
	// ErrTooLarge reports a value larger than [MaxValueSize].
	ErrTooLarge = errors.New("moat/securestore: value too large")
	// ErrExists reports a Create on a backend that already holds a store.
	ErrExists = errors.New("moat/securestore: store already exists")
	// ErrNoStore reports an Open on a backend that holds no store.
	ErrNoStore = errors.New("moat/securestore: no store here")
	// ErrClosed reports a call on a closed store.
	ErrClosed = errors.New("moat/securestore: store is closed")
	// ErrInvalidDocument reports a collection document that is not a JSON
	// object.
	ErrInvalidDocument = errors.New("moat/securestore: document is not a JSON object")
	// ErrInvalidQuery reports a query on a field that is not a search field
	// of the collection, or with a value that cannot be indexed.
	ErrInvalidQuery = errors.New("moat/securestore: invalid query")
)
