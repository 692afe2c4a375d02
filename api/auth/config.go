package auth

import "github.com/icptrack/icptrack/internal/config"

// FromFile is what a configuration file's api: section says about
// security, for New and Listen. f may be nil (no file).
func FromFile(f *config.File) (cfg Config, tls TLSConfig, insecure bool) {
	if f == nil {
		return Config{}, TLSConfig{}, false
	}
	a := f.API.Auth
	for _, t := range a.Tokens {
		cfg.Tokens = append(cfg.Tokens, Token(t))
	}
	for _, u := range a.Users {
		cfg.Users = append(cfg.Users, User(u))
	}
	cfg.RateLimit = a.RateLimit
	if f.Has("api.rate_limit") && a.RateLimit == 0 {
		cfg.RateLimit = -1 // the file's 0 is "no limit"; Config's is the default
	}
	return cfg, TLSConfig{CertFile: a.CertFile, KeyFile: a.KeyFile}, a.Insecure
}
