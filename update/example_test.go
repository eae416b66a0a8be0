package update_test

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing/fstest"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/moatsec/moat/update"
)

// Example shows the whole path: a root, a publisher, a server with the
// update gate in front of an API, and a client that updates when the gate
// says so.
func Example() {
	ctx := context.Background()

	// Operator: one key signs roots and manifests (use several and a
	// threshold in production).
	key, _ := update.GenerateKey(update.EdDSA)
	pub, _ := update.PublicKeyOf(key)
	root, _ := update.SignRoot(update.Root{Version: 1, Expires: time.Now().AddDate(1, 0, 0),
		RootKeys: []jose.JSONWebKey{pub}, RootThreshold: 1, ManifestKeys: []jose.JSONWebKey{pub}, ManifestThreshold: 1}, key)

	// Server: publish version 1, serve updates, gate the API.
	store := update.NewMemoryStore()
	publisher, _ := update.NewPublisher(update.PublisherConfig{Store: store, Keys: []crypto.Signer{key}})
	publish := func(v uint64, page string, mandatory bool) {
		web := fstest.MapFS{"index.html": {Data: []byte(page)}}
		_, err := publisher.Publish(ctx, web, update.ReleaseSpec{App: "com.example.travel", Platform: "ios",
			AppVersions: ">=1.0 <2", Version: v, Mandatory: mandatory, Expires: time.Now().Add(7 * 24 * time.Hour)})
		if err != nil {
			panic(err)
		}
	}
	publish(1, "<h1>Travel</h1>", false)
	// CacheTTL -1: see each publish at once (the memory store is cheap to
	// read; the default caches release lists for 5 seconds).
	srv, _ := update.NewServer(update.ServerConfig{Store: store, Roots: [][]byte{root}, CacheTTL: -1})
	api := srv.RequireUpdated(func(r *http.Request) (update.ClientState, error) {
		v, err := update.BundleVersionFrom(r)
		// In moat's Stack, app, platform and version come from the token.
		return update.ClientState{App: "com.example.travel", Platform: "ios", AppVersion: "1.4", BundleVersion: v}, err
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "booked") }))
	mux := http.NewServeMux()
	mux.Handle("/update/", http.StripPrefix("/update", srv))
	mux.Handle("/api/book", api)
	ts := httptest.NewServer(mux)
	defer ts.Close()

	// App: ship the root, keep the installation in a directory.
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	client, _ := update.NewClient(update.ClientConfig{BaseURL: ts.URL + "/update", App: "com.example.travel",
		Platform: "ios", AppVersion: "1.4", Root: root, Dir: dir})
	httpClient := &http.Client{Transport: client.Transport(nil)} // reports the installed version

	m, _ := client.Update(ctx)
	page, _ := os.ReadFile(filepath.Join(client.Path(), "index.html"))
	fmt.Printf("installed %d: %s\n", m.BundleVersion, page)

	publish(2, "<h1>Travel, fixed</h1>", true) // a mandatory fix
	resp, _ := httpClient.Get(ts.URL + "/api/book")
	fmt.Println("before updating:", resp.StatusCode)
	resp.Body.Close()

	m, _ = client.Update(ctx)
	page, _ = os.ReadFile(filepath.Join(client.Path(), "index.html"))
	fmt.Printf("installed %d: %s\n", m.BundleVersion, page)
	resp, _ = httpClient.Get(ts.URL + "/api/book")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("after updating:", resp.StatusCode, string(body))

	// Output:
	// installed 1: <h1>Travel</h1>
	// before updating: 403
	// installed 2: <h1>Travel, fixed</h1>
	// after updating: 200 booked
}
