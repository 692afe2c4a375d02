package auth

import (
	"encoding/base64"
	"strings"
	"testing"
)

func FuzzParseAuthorization(f *testing.F) {
	f.Add("Bearer icpt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw")))
	f.Add("basic YTpi")
	f.Add("Bearer a\r\nb")
	f.Add("Basic ====")
	f.Fuzz(func(t *testing.T, h string) {
		c, err := parseAuthorization(h)
		if err != nil {
			return
		}
		scheme, rest, _ := strings.Cut(h, " ")
		if c.bearer {
			if c.token != rest || !strings.EqualFold(scheme, "Bearer") || strings.ContainsAny(c.token, " \t\r\n,\x00") {
				t.Fatalf("%q: bearer token %q", h, c.token)
			}
			return
		}
		if c.user == "" || strings.Contains(c.user, ":") || hasControl(c.user) || hasControl(c.password) {
			t.Fatalf("%q: user %q password %q", h, c.user, c.password)
		}
		// What was read is what was sent: encoding it again gives the header.
		if again := base64.StdEncoding.EncodeToString([]byte(c.user + ":" + c.password)); again != rest {
			t.Fatalf("%q: read as %q:%q, which encodes to %q", h, c.user, c.password, again)
		}
	})
}
