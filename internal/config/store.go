package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Store holds the store's settings (--store; README: "The store"). Zero
// values mean the defaults.
type Store struct {
	Dir         string
	KeyFile     string
	SegmentSize int64
	SegmentAge  time.Duration
	MaxSize     int64
	MaxAge      time.Duration
}

func init() {
	keys["store.dir"] = str(func(f *File) *string { return &f.Store.Dir })
	keys["store.key_file"] = str(func(f *File) *string { return &f.Store.KeyFile })
	keys["store.segment_size"] = bigSize(func(f *File) *int64 { return &f.Store.SegmentSize }, 64<<10)
	keys["store.max_size"] = bigSize(func(f *File) *int64 { return &f.Store.MaxSize }, 1<<20)
	keys["store.segment_age"] = age(func(f *File) *time.Duration { return &f.Store.SegmentAge })
	keys["store.max_age"] = age(func(f *File) *time.Duration { return &f.Store.MaxAge })
}

func bigSize(field func(*File) *int64, least int64) setter {
	return func(f *File, n *yaml.Node) error {
		var s string
		if err := scalar(n, &s); err != nil {
			return err
		}
		v, err := ParseBytes(s)
		if err != nil {
			return err
		}
		if v < least {
			return fmt.Errorf("%s is too small: use at least %d bytes", s, least)
		}
		*field(f) = v
		return nil
	}
}

func age(field func(*File) *time.Duration) setter {
	return func(f *File, n *yaml.Node) error {
		var s string
		if err := scalar(n, &s); err != nil {
			return err
		}
		d, err := ParseAge(s)
		if err != nil {
			return err
		}
		*field(f) = d
		return nil
	}
}

// ParseBytes reads a byte size that may be large: 4096, 64MiB, 10G,
// 2TiB (K, M, G and T are powers of 1024, with or without iB or B).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "B"), "i")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k', 'K':
			mult, t = 1<<10, t[:n-1]
		case 'm', 'M':
			mult, t = 1<<20, t[:n-1]
		case 'g', 'G':
			mult, t = 1<<30, t[:n-1]
		case 't', 'T':
			mult, t = 1<<40, t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v <= 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size: use bytes or a number with K, M, G or T (KiB, MiB, GiB, TiB)", s)
	}
	return v * mult, nil
}

// ParseAge reads a positive duration, in Go's syntax or in days or weeks:
// 90m, 12h, 30d, 2w.
func ParseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	unit := time.Duration(0)
	switch {
	case strings.HasSuffix(s, "d"):
		unit = 24 * time.Hour
	case strings.HasSuffix(s, "w"):
		unit = 7 * 24 * time.Hour
	}
	if unit != 0 {
		if n, err := strconv.Atoi(s[:len(s)-1]); err == nil && n > 0 && n < 1<<20 {
			return time.Duration(n) * unit, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%q is not an age: use a duration such as 1h, 30d or 2w", s)
}
