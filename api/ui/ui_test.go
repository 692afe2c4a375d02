package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, url string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
	return rec.Result()
}

func TestHandlerServesThePageAndItsModules(t *testing.T) {
	h := Handler()
	res := get(t, h, "/")
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(body), `<script type="module" src="/static/js/main.js">`) {
		t.Fatalf("GET / = %d, body does not load main.js:\n%.300s", res.StatusCode, body)
	}
	// A module script is refused unless served as JavaScript.
	for _, p := range []string{"/static/js/main.js", "/static/vendor/cytoscape.esm.min.mjs"} {
		res := get(t, h, p)
		if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("GET %s = %d %q, want 200 text/javascript", p, res.StatusCode, ct)
		}
	}
	for _, p := range []string{"/static/vendor/", "/static/", "/nothing", "/static/js/nothing.js"} {
		if res := get(t, h, p); res.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", p, res.StatusCode)
		}
	}
}

// TestPageHasNoInlineScriptOrStyle keeps the page within the API's CSP,
// which allows scripts and styles only from the server's own files.
func TestPageHasNoInlineScriptOrStyle(t *testing.T) {
	page, err := fs.ReadFile(Static(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s+type="module")?>`),
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`(?:src|href)="(?:https?:)?//`),
	} {
		if m := bad.Find(page); m != nil {
			t.Errorf("index.html has %q, which the CSP refuses (or which needs the internet)", m)
		}
	}
}

// TestEveryModuleImportIsEmbedded catches a misspelt import, which with
// no build step would only show in a browser.
func TestEveryModuleImportIsEmbedded(t *testing.T) {
	imp := regexp.MustCompile(`(?m)^import\s+(?:[^"']+\s+from\s+)?["']([^"']+)["']`)
	n := 0
	err := fs.WalkDir(Static(), "js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := fs.ReadFile(Static(), p)
		if err != nil {
			return err
		}
		for _, m := range imp.FindAllSubmatch(src, -1) {
			n++
			target := path.Join(path.Dir(p), string(m[1]))
			if _, err := fs.Stat(Static(), target); err != nil {
				t.Errorf("%s imports %s, which is not embedded", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Errorf("found %d imports; the pattern no longer matches the modules", n)
	}
}
