package main

import (
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// source is what git says of the checkout being packaged.
type source struct {
	version  string // Debian's form of git describe
	revision string // the full commit hash
	modified bool   // uncommitted changes
	epoch    string // the commit's time, in seconds (SOURCE_DATE_EPOCH)
}

func describe() (source, error) {
	git := func(args ...string) (string, error) {
		out, err := exec.Command("git", args...).Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(ee.Stderr)))
		} else if err != nil {
			return "", fmt.Errorf("git %s: %w (mkdeb needs git and the checkout's history: give -version otherwise)", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	var s source
	d, err := git("describe", "--tags", "--always", "--dirty", "--match", "v[0-9]*")
	if err != nil {
		return s, err
	}
	if s.version, err = debVersion(d); err != nil {
		return s, err
	}
	s.modified = strings.HasSuffix(d, "-dirty")
	if s.revision, err = git("rev-parse", "HEAD"); err != nil {
		return s, err
	}
	s.epoch, err = git("log", "-1", "--format=%ct")
	return s, err
}

var (
	// v1.2.3, v1.2.3-rc1, each maybe with -N-gHASH (commits since) and -dirty.
	tagged = regexp.MustCompile(`^v([0-9][0-9.]*)(?:-([0-9A-Za-z.]+?))??(?:-([0-9]+)-g([0-9a-f]+))?(-dirty)?$`)
	// No tag: the abbreviated commit, maybe -dirty.
	untagged = regexp.MustCompile(`^([0-9a-f]{4,})(-dirty)?$`)
)

// debVersion turns git describe --tags --always --dirty into a Debian
// version that sorts as the commits do: v1.2.3 is 1.2.3, four commits on
// 1.2.3+4.g9c327e1, v1.3.0-rc1 1.3.0~rc1 (before 1.3.0), a tree with
// changes +…dirty; with no tag, 0.0.0+9c327e1.
func debVersion(describe string) (string, error) {
	if m := untagged.FindStringSubmatch(describe); m != nil {
		v := "0.0.0+" + m[1]
		if m[2] != "" {
			v += ".dirty"
		}
		return v, nil
	}
	m := tagged.FindStringSubmatch(describe)
	if m == nil {
		return "", fmt.Errorf("git describe says %q, which is not vMAJOR.MINOR.PATCH[-PRERELEASE][-N-gHASH][-dirty]: tag releases as v1.2.3, or give -version", describe)
	}
	v := m[1]
	if m[2] != "" {
		v += "~" + m[2]
	}
	var meta []string
	if m[3] != "" {
		meta = append(meta, m[3], "g"+m[4])
	}
	if m[5] != "" {
		meta = append(meta, "dirty")
	}
	if len(meta) > 0 {
		v += "+" + strings.Join(meta, ".")
	}
	return v, nil
}
