package credential

import (
	"strings"
	"testing"
)

func TestScopesImplyTheWeakerOnes(t *testing.T) {
	for _, c := range []struct {
		have  []string
		scope string
		want  bool
	}{
		{[]string{Read}, Read, true},
		{[]string{Read}, ReadPayload, false},
		{[]string{Read}, Admin, false},
		{[]string{ReadPayload}, Read, true},
		{[]string{ReadPayload}, Admin, false},
		{[]string{Admin}, ReadPayload, true},
		{[]string{Admin}, Read, true},
		{[]string{Read, Admin}, Admin, true},
		{nil, Read, false},
		{[]string{"write"}, Read, false},
		{[]string{Admin}, "write", false},
	} {
		if got := Grants(c.have, c.scope); got != c.want {
			t.Errorf("Grants(%v, %s) = %v, want %v", c.have, c.scope, got, c.want)
		}
	}
	if _, err := ParseScopes("read,Admin"); err == nil || !strings.Contains(err.Error(), "use read, read:payload, admin") {
		t.Errorf("ParseScopes(read,Admin): %v", err)
	}
}

func TestTokenHashIsSHA256OfTheWholeToken(t *testing.T) {
	// printf %s icpt_test | sha256sum
	const want = "sha256:e69f145108b57eeb996d8986c093342ecea465c6863d393debac2b8253e23730"
	if got := HashToken("icpt_test"); got != want {
		t.Fatalf("HashToken = %q, want %q", got, want)
	}
	tok, hash, err := NewToken()
	if err != nil || !LooksLikeToken(tok) || HashToken(tok) != hash {
		t.Fatalf("NewToken = %q %q %v", tok, hash, err)
	}
	if b, err := ParseTokenHash(hash); err != nil || len(b) != 32 {
		t.Errorf("ParseTokenHash(%q) = %x, %v", hash, b, err)
	}
	for _, bad := range []string{"", "sha256:", hash[:len(hash)-1], "sha1:" + hash[7:], strings.ToUpper(hash[:7]) + hash[7:], hash + "00"} {
		if _, err := ParseTokenHash(bad); err == nil {
			t.Errorf("ParseTokenHash(%q) accepted", bad)
		}
	}
}

func TestPasswordHashesParse(t *testing.T) {
	good := []string{
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE",
		"$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"$2a$04$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
	}
	for _, s := range good {
		if _, err := ParsePasswordHash(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	h, _ := ParsePasswordHash(good[0])
	if h.Memory != 19456 || h.Time != 2 || h.Threads != 1 || string(h.Salt) != "saltsaltsalt" || len(h.Key) != 32 {
		t.Errorf("parsed %+v", h)
	}
	for _, c := range []struct{ hash, want string }{
		{"hunter2", "is not a password hash"},
		{"$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE", "is not a password hash"},
		{"$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE", "use v=19"},
		{"$argon2id$v=19$m=6553600,t=2,p=1$c2FsdHNhbHRzYWx0$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE", "too costly"},
		{"$argon2id$v=19$t=2,m=19456,p=1$c2FsdHNhbHRzYWx0$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE", "is not a password hash"},
		{"$argon2id$v=19$m=19456,t=2,p=0$c2FsdHNhbHRzYWx0$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE", "is not a password hash"},
		{"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE", "is not a password hash"},
		{"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$YWFh", "is not a password hash"},
		{"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0==$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE", "is not a password hash"},
		{"$2b$10$N9qo8uLOickgx2ZMRZoMye", "is not a password hash"},
		{"$2x$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", "is not a password hash"},
	} {
		if _, err := ParsePasswordHash(c.hash); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.hash, err, c.want)
		}
	}
}
