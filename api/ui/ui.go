// Package ui is the live view: the page the API server serves at / and its
// files under /static/, embedded in the binary so that the view needs no
// CDN, no internet and no build step. The page holds no data; it asks the
// API for it with the token the user gives it.
package ui

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
)

//go:embed static
var files embed.FS

// Static is the page's files: index.html, its ES modules and CSS, and the
// vendored libraries under vendor/.
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embed directive names "static"; it cannot be missing
	}
	return sub
}

func init() {
	// A browser runs a module script only when it is served as JavaScript,
	// and the system's MIME table may not know .mjs.
	_ = mime.AddExtensionType(".mjs", "text/javascript; charset=utf-8")
	_ = mime.AddExtensionType(".js", "text/javascript; charset=utf-8")
}

// Handler serves the page at / and its files at /static/. It sets no
// security headers and asks for no credential: the server wraps it in
// auth.Headers, and the page has no data of its own to protect.
func Handler() http.Handler {
	static := http.FileServerFS(Static())
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", noListing(static)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, Static(), "index.html")
	})
	return mux
}

// noListing answers 404 for folders, so /static/vendor/ is not an index of
// what is vendored (VERSIONS says that).
func noListing(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || r.URL.Path[len(r.URL.Path)-1] == '/' {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
